/** @file kvx.h  @brief Umbrella header: everything public in kvx. */
#ifndef KVX_KVX_H
#define KVX_KVX_H

#include <kvx/common.h>
#include <kvx/device.h>
#include <kvx/engine.h>
#include <kvx/kv.h>
#include <kvx/log.h>
#include <kvx/status.h>
#include <kvx/version.h>

#endif /* KVX_KVX_H */
