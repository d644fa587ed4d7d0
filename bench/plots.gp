# SPDX-License-Identifier: MIT
# bench/plots.gp - the report's plots; bench/run.sh passes tmp= and out=
# (directories), ncol= (columns of waste.dat), batches= (of attn.csv).
set terminal pngcairo size 900,520 noenhanced font ",10"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key outside right top
set grid ytics

set output out.'/waste.png'
set title 'Layout waste, time-averaged over decode steps (log scale)'
set ylabel 'waste (% of needed memory)'
set logscale y
set yrange [0.1:100]
set xtics rotate by -25
plot for [i=2:ncol] tmp.'/waste.dat' using i:xtic(1) title columnheader(i)
unset logscale y
set yrange [*:*]

set output out.'/latency.png'
set title 'Step latency p50 / p99, conv trace (log scale)'
set ylabel 'microseconds'
set logscale y
set yrange [*:*]
plot tmp.'/lat.dat' using 2:xtic(1) title 'host p50', \
     '' using 3 title 'host p99', \
     '' using 4 title 'cuda over fakecuda (A100 latencies) p50', \
     '' using 5 title 'cuda p99'
unset logscale y

set output out.'/attn.png'
set style data linespoints
set title 'Decode attention through a 16-token block table, relative to contiguous'
set ylabel 'time, paged / contiguous'
set xlabel 'context (tokens)'
set logscale x 2
set xrange [*:*]
set xtics norotate autofreq
set yrange [0:*]
set datafile separator ','
plot for [b in batches] out.'/attn.csv' using (column(1) == b+0 ? column(2) : NaN):5 title 'batch '.b, 1 with lines dt 2 title 'equal'
