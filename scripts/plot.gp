# GB/s vs block size for one kvx-bench engine sweep, batch 1 and batch 32
# side by side: kvx READ and WRITE beside the memcpy, raw-TCP and
# process_vm_readv/writev baselines measured in the same run.
#
#   gnuplot -e "data='tcp.dat'; out='tcp.png'; title='kvx tcp'" scripts/plot.gp
#
# data: written by scripts/bench.sh from kvx-bench JSON; four blocks
# separated by two blank lines (gnuplot "index"): 0 READ x1, 1 WRITE x1,
# 2 READ x32, 3 WRITE x32. Columns: block bytes, kvx GB/s, memcpy GB/s,
# raw-TCP GB/s, pvm GB/s ("NaN" where not measured).

if (!exists("data")) data = 'build/bench/tcp.dat'
if (!exists("out")) out = 'build/bench/tcp.png'
if (!exists("title")) title = 'kvx-bench'

set terminal pngcairo size 1400,560 font 'sans,10'
set output out
set datafile missing 'NaN'
set datafile separator '\t'

set logscale x 2
set logscale y 10
set xrange [3000:90000000]
set yrange [0.02:100]
set xtics ('4K' 4096, '16K' 16384, '64K' 65536, '256K' 262144, '1M' 1048576, \
           '4M' 4194304, '16M' 16777216, '64M' 67108864)
set format y '%g'
set grid xtics ytics mytics lc rgb '#dddddd'
set xlabel 'block size (bytes per descriptor)'
set ylabel 'GB/s (1e9 bytes/s)'
set key bottom right box opaque font ',9'

set style line 1 lc rgb '#1f77b4' lw 2 pt 7 ps 0.8
set style line 2 lc rgb '#d62728' lw 2 pt 5 ps 0.8
set style line 3 lc rgb '#1f77b4' lw 1.5 dt 2 pt 6 ps 0.7
set style line 4 lc rgb '#d62728' lw 1.5 dt 2 pt 4 ps 0.7
set style line 5 lc rgb '#2ca02c' lw 2 dt 3
set style line 6 lc rgb '#9467bd' lw 2 dt 4

set multiplot layout 1,2 title title font ',12'
do for [b = 0:1] {
    set title (b == 0 ? 'batch 1: one descriptor per transfer' \
                      : 'batch 32: 32 scattered descriptors per transfer (x axis: each one)')
    r = 2 * b
    w = 2 * b + 1
    plot data index r using 1:2 with linespoints ls 1 title 'kvx READ', \
         data index w using 1:2 with linespoints ls 2 title 'kvx WRITE', \
         data index r using 1:4 with linespoints ls 3 title 'raw TCP, READ-style (request + stream)', \
         data index w using 1:4 with linespoints ls 4 title 'raw TCP, WRITE-style (stream + ack)', \
         data index r using 1:3 with lines ls 5 title 'memcpy, same pieces (1 thread)', \
         data index r using 1:5 with lines ls 6 title 'process\_vm\_readv, same pieces'
}
unset multiplot
