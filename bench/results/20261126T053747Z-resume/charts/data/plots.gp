set terminal pngcairo size 1000,560 noenhanced font ",10"
set grid ytics
set key outside right top
set output "/tmp/cmp-resume/charts/bars-hs13-ec.png"
set title "hs13-ec: conn per s per server core (medians)"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.7
set xtics rotate by -30
set yrange [0:*]
unset key
plot "/tmp/cmp-resume/charts/data/bars-hs13-ec.dat" using 2:xtic(1) lc rgb "#3a78b5" notitle
set key outside right top
set xtics norotate
set autoscale
set output "/tmp/cmp-resume/charts/rate-hs13-ec.png"
set title "hs13-ec: rate per second, round 1 (warm-up: first second)"
set xlabel "second"
set ylabel "per second"
set style data linespoints
set yrange [0:*]
plot "/tmp/cmp-resume/charts/data/rate-hs13-ec-tern-ec.dat" using 1:2 with linespoints title "tern-ec", "/tmp/cmp-resume/charts/data/rate-hs13-ec-nginx-ec.dat" using 1:2 with linespoints title "nginx-ec", "/tmp/cmp-resume/charts/data/rate-hs13-ec-stunnel-ec.dat" using 1:2 with linespoints title "stunnel-ec", "/tmp/cmp-resume/charts/data/rate-hs13-ec-s_server-ec.dat" using 1:2 with linespoints title "s_server-ec"
unset xlabel
unset ylabel
set autoscale
set output "/tmp/cmp-resume/charts/latency-hs13-ec.png"
set title "hs13-ec: latency percentiles (us, median over rounds)"
set logscale y
set ylabel "microseconds"
set xrange [-0.5:4.5]
plot "/tmp/cmp-resume/charts/data/lat-hs13-ec-tern-ec.dat" using 1:3:xtic(2) with linespoints title "tern-ec", "/tmp/cmp-resume/charts/data/lat-hs13-ec-nginx-ec.dat" using 1:3:xtic(2) with linespoints title "nginx-ec", "/tmp/cmp-resume/charts/data/lat-hs13-ec-stunnel-ec.dat" using 1:3:xtic(2) with linespoints title "stunnel-ec", "/tmp/cmp-resume/charts/data/lat-hs13-ec-s_server-ec.dat" using 1:3:xtic(2) with linespoints title "s_server-ec"
unset logscale y
unset ylabel
set autoscale
set output "/tmp/cmp-resume/charts/bars-hs12-ec.png"
set title "hs12-ec: conn per s per server core (medians)"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.7
set xtics rotate by -30
set yrange [0:*]
unset key
plot "/tmp/cmp-resume/charts/data/bars-hs12-ec.dat" using 2:xtic(1) lc rgb "#3a78b5" notitle
set key outside right top
set xtics norotate
set autoscale
set output "/tmp/cmp-resume/charts/rate-hs12-ec.png"
set title "hs12-ec: rate per second, round 1 (warm-up: first second)"
set xlabel "second"
set ylabel "per second"
set style data linespoints
set yrange [0:*]
plot "/tmp/cmp-resume/charts/data/rate-hs12-ec-tern-ec.dat" using 1:2 with linespoints title "tern-ec", "/tmp/cmp-resume/charts/data/rate-hs12-ec-nginx-ec.dat" using 1:2 with linespoints title "nginx-ec", "/tmp/cmp-resume/charts/data/rate-hs12-ec-stunnel-ec.dat" using 1:2 with linespoints title "stunnel-ec", "/tmp/cmp-resume/charts/data/rate-hs12-ec-s_server-ec.dat" using 1:2 with linespoints title "s_server-ec"
unset xlabel
unset ylabel
set autoscale
set output "/tmp/cmp-resume/charts/latency-hs12-ec.png"
set title "hs12-ec: latency percentiles (us, median over rounds)"
set logscale y
set ylabel "microseconds"
set xrange [-0.5:4.5]
plot "/tmp/cmp-resume/charts/data/lat-hs12-ec-tern-ec.dat" using 1:3:xtic(2) with linespoints title "tern-ec", "/tmp/cmp-resume/charts/data/lat-hs12-ec-nginx-ec.dat" using 1:3:xtic(2) with linespoints title "nginx-ec", "/tmp/cmp-resume/charts/data/lat-hs12-ec-stunnel-ec.dat" using 1:3:xtic(2) with linespoints title "stunnel-ec", "/tmp/cmp-resume/charts/data/lat-hs12-ec-s_server-ec.dat" using 1:3:xtic(2) with linespoints title "s_server-ec"
unset logscale y
unset ylabel
set autoscale
set output "/tmp/cmp-resume/charts/bars-resume13.png"
set title "resume13: conn per s per server core (medians)"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.7
set xtics rotate by -30
set yrange [0:*]
unset key
plot "/tmp/cmp-resume/charts/data/bars-resume13.dat" using 2:xtic(1) lc rgb "#3a78b5" notitle
set key outside right top
set xtics norotate
set autoscale
set output "/tmp/cmp-resume/charts/rate-resume13.png"
set title "resume13: rate per second, round 1 (warm-up: first second)"
set xlabel "second"
set ylabel "per second"
set style data linespoints
set yrange [0:*]
plot "/tmp/cmp-resume/charts/data/rate-resume13-tern-ec.dat" using 1:2 with linespoints title "tern-ec", "/tmp/cmp-resume/charts/data/rate-resume13-nginx-ec.dat" using 1:2 with linespoints title "nginx-ec", "/tmp/cmp-resume/charts/data/rate-resume13-stunnel-ec.dat" using 1:2 with linespoints title "stunnel-ec"
unset xlabel
unset ylabel
set autoscale
set output "/tmp/cmp-resume/charts/latency-resume13.png"
set title "resume13: latency percentiles (us, median over rounds)"
set logscale y
set ylabel "microseconds"
set xrange [-0.5:4.5]
plot "/tmp/cmp-resume/charts/data/lat-resume13-tern-ec.dat" using 1:3:xtic(2) with linespoints title "tern-ec", "/tmp/cmp-resume/charts/data/lat-resume13-nginx-ec.dat" using 1:3:xtic(2) with linespoints title "nginx-ec", "/tmp/cmp-resume/charts/data/lat-resume13-stunnel-ec.dat" using 1:3:xtic(2) with linespoints title "stunnel-ec"
unset logscale y
unset ylabel
set autoscale
set output "/tmp/cmp-resume/charts/bars-resume12.png"
set title "resume12: conn per s per server core (medians)"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.7
set xtics rotate by -30
set yrange [0:*]
unset key
plot "/tmp/cmp-resume/charts/data/bars-resume12.dat" using 2:xtic(1) lc rgb "#3a78b5" notitle
set key outside right top
set xtics norotate
set autoscale
set output "/tmp/cmp-resume/charts/rate-resume12.png"
set title "resume12: rate per second, round 1 (warm-up: first second)"
set xlabel "second"
set ylabel "per second"
set style data linespoints
set yrange [0:*]
plot "/tmp/cmp-resume/charts/data/rate-resume12-tern-ec.dat" using 1:2 with linespoints title "tern-ec", "/tmp/cmp-resume/charts/data/rate-resume12-nginx-ec.dat" using 1:2 with linespoints title "nginx-ec", "/tmp/cmp-resume/charts/data/rate-resume12-stunnel-ec.dat" using 1:2 with linespoints title "stunnel-ec"
unset xlabel
unset ylabel
set autoscale
set output "/tmp/cmp-resume/charts/latency-resume12.png"
set title "resume12: latency percentiles (us, median over rounds)"
set logscale y
set ylabel "microseconds"
set xrange [-0.5:4.5]
plot "/tmp/cmp-resume/charts/data/lat-resume12-tern-ec.dat" using 1:3:xtic(2) with linespoints title "tern-ec", "/tmp/cmp-resume/charts/data/lat-resume12-nginx-ec.dat" using 1:3:xtic(2) with linespoints title "nginx-ec", "/tmp/cmp-resume/charts/data/lat-resume12-stunnel-ec.dat" using 1:3:xtic(2) with linespoints title "stunnel-ec"
unset logscale y
unset ylabel
set autoscale
set output "/tmp/cmp-resume/charts/ratios.png"
set rmargin 12
set title "tern / peer, rate per server core (1 = even; echo row: CPU at a fixed rate)"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.7
set xtics rotate by -45 font ",8"
set yrange [0:*]
unset key
plot "/tmp/cmp-resume/charts/data/ratios.dat" using 2:xtic(1) lc rgb "#b5563a" notitle, 1 lc rgb "black" dt 2 notitle
