set terminal pngcairo size 1000,560 noenhanced font ",10"
set grid ytics
set key outside right top
set output "bench/results/20261126T052625Z/charts/bars-hs13-ec.png"
set title "hs13-ec: conn per s per server core (medians)"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.7
set xtics rotate by -30
set yrange [0:*]
unset key
plot "bench/results/20261126T052625Z/charts/data/bars-hs13-ec.dat" using 2:xtic(1) lc rgb "#3a78b5" notitle
set key outside right top
set xtics norotate
set autoscale
set output "bench/results/20261126T052625Z/charts/rate-hs13-ec.png"
set title "hs13-ec: rate per second, round 1 (warm-up: first second)"
set xlabel "second"
set ylabel "per second"
set style data linespoints
set yrange [0:*]
plot "bench/results/20261126T052625Z/charts/data/rate-hs13-ec-tern-ec.dat" using 1:2 with linespoints title "tern-ec", "bench/results/20261126T052625Z/charts/data/rate-hs13-ec-nginx-ec.dat" using 1:2 with linespoints title "nginx-ec", "bench/results/20261126T052625Z/charts/data/rate-hs13-ec-haproxy-ec.dat" using 1:2 with linespoints title "haproxy-ec", "bench/results/20261126T052625Z/charts/data/rate-hs13-ec-stunnel-ec.dat" using 1:2 with linespoints title "stunnel-ec", "bench/results/20261126T052625Z/charts/data/rate-hs13-ec-s_server-ec.dat" using 1:2 with linespoints title "s_server-ec"
unset xlabel
unset ylabel
set autoscale
set output "bench/results/20261126T052625Z/charts/latency-hs13-ec.png"
set title "hs13-ec: latency percentiles (us, median over rounds)"
set logscale y
set ylabel "microseconds"
set xrange [-0.5:4.5]
plot "bench/results/20261126T052625Z/charts/data/lat-hs13-ec-tern-ec.dat" using 1:3:xtic(2) with linespoints title "tern-ec", "bench/results/20261126T052625Z/charts/data/lat-hs13-ec-nginx-ec.dat" using 1:3:xtic(2) with linespoints title "nginx-ec", "bench/results/20261126T052625Z/charts/data/lat-hs13-ec-haproxy-ec.dat" using 1:3:xtic(2) with linespoints title "haproxy-ec", "bench/results/20261126T052625Z/charts/data/lat-hs13-ec-stunnel-ec.dat" using 1:3:xtic(2) with linespoints title "stunnel-ec", "bench/results/20261126T052625Z/charts/data/lat-hs13-ec-s_server-ec.dat" using 1:3:xtic(2) with linespoints title "s_server-ec"
unset logscale y
unset ylabel
set autoscale
set output "bench/results/20261126T052625Z/charts/bars-hs13-rsa.png"
set title "hs13-rsa: conn per s per server core (medians)"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.7
set xtics rotate by -30
set yrange [0:*]
unset key
plot "bench/results/20261126T052625Z/charts/data/bars-hs13-rsa.dat" using 2:xtic(1) lc rgb "#3a78b5" notitle
set key outside right top
set xtics norotate
set autoscale
set output "bench/results/20261126T052625Z/charts/rate-hs13-rsa.png"
set title "hs13-rsa: rate per second, round 1 (warm-up: first second)"
set xlabel "second"
set ylabel "per second"
set style data linespoints
set yrange [0:*]
plot "bench/results/20261126T052625Z/charts/data/rate-hs13-rsa-tern-rsa.dat" using 1:2 with linespoints title "tern-rsa", "bench/results/20261126T052625Z/charts/data/rate-hs13-rsa-nginx-rsa.dat" using 1:2 with linespoints title "nginx-rsa", "bench/results/20261126T052625Z/charts/data/rate-hs13-rsa-haproxy-rsa.dat" using 1:2 with linespoints title "haproxy-rsa", "bench/results/20261126T052625Z/charts/data/rate-hs13-rsa-stunnel-rsa.dat" using 1:2 with linespoints title "stunnel-rsa", "bench/results/20261126T052625Z/charts/data/rate-hs13-rsa-s_server-rsa.dat" using 1:2 with linespoints title "s_server-rsa"
unset xlabel
unset ylabel
set autoscale
set output "bench/results/20261126T052625Z/charts/latency-hs13-rsa.png"
set title "hs13-rsa: latency percentiles (us, median over rounds)"
set logscale y
set ylabel "microseconds"
set xrange [-0.5:4.5]
plot "bench/results/20261126T052625Z/charts/data/lat-hs13-rsa-tern-rsa.dat" using 1:3:xtic(2) with linespoints title "tern-rsa", "bench/results/20261126T052625Z/charts/data/lat-hs13-rsa-nginx-rsa.dat" using 1:3:xtic(2) with linespoints title "nginx-rsa", "bench/results/20261126T052625Z/charts/data/lat-hs13-rsa-haproxy-rsa.dat" using 1:3:xtic(2) with linespoints title "haproxy-rsa", "bench/results/20261126T052625Z/charts/data/lat-hs13-rsa-stunnel-rsa.dat" using 1:3:xtic(2) with linespoints title "stunnel-rsa", "bench/results/20261126T052625Z/charts/data/lat-hs13-rsa-s_server-rsa.dat" using 1:3:xtic(2) with linespoints title "s_server-rsa"
unset logscale y
unset ylabel
set autoscale
set output "bench/results/20261126T052625Z/charts/bars-hs12-ec.png"
set title "hs12-ec: conn per s per server core (medians)"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.7
set xtics rotate by -30
set yrange [0:*]
unset key
plot "bench/results/20261126T052625Z/charts/data/bars-hs12-ec.dat" using 2:xtic(1) lc rgb "#3a78b5" notitle
set key outside right top
set xtics norotate
set autoscale
set output "bench/results/20261126T052625Z/charts/rate-hs12-ec.png"
set title "hs12-ec: rate per second, round 1 (warm-up: first second)"
set xlabel "second"
set ylabel "per second"
set style data linespoints
set yrange [0:*]
plot "bench/results/20261126T052625Z/charts/data/rate-hs12-ec-tern-ec.dat" using 1:2 with linespoints title "tern-ec", "bench/results/20261126T052625Z/charts/data/rate-hs12-ec-nginx-ec.dat" using 1:2 with linespoints title "nginx-ec", "bench/results/20261126T052625Z/charts/data/rate-hs12-ec-haproxy-ec.dat" using 1:2 with linespoints title "haproxy-ec", "bench/results/20261126T052625Z/charts/data/rate-hs12-ec-stunnel-ec.dat" using 1:2 with linespoints title "stunnel-ec", "bench/results/20261126T052625Z/charts/data/rate-hs12-ec-s_server-ec.dat" using 1:2 with linespoints title "s_server-ec"
unset xlabel
unset ylabel
set autoscale
set output "bench/results/20261126T052625Z/charts/latency-hs12-ec.png"
set title "hs12-ec: latency percentiles (us, median over rounds)"
set logscale y
set ylabel "microseconds"
set xrange [-0.5:4.5]
plot "bench/results/20261126T052625Z/charts/data/lat-hs12-ec-tern-ec.dat" using 1:3:xtic(2) with linespoints title "tern-ec", "bench/results/20261126T052625Z/charts/data/lat-hs12-ec-nginx-ec.dat" using 1:3:xtic(2) with linespoints title "nginx-ec", "bench/results/20261126T052625Z/charts/data/lat-hs12-ec-haproxy-ec.dat" using 1:3:xtic(2) with linespoints title "haproxy-ec", "bench/results/20261126T052625Z/charts/data/lat-hs12-ec-stunnel-ec.dat" using 1:3:xtic(2) with linespoints title "stunnel-ec", "bench/results/20261126T052625Z/charts/data/lat-hs12-ec-s_server-ec.dat" using 1:3:xtic(2) with linespoints title "s_server-ec"
unset logscale y
unset ylabel
set autoscale
set output "bench/results/20261126T052625Z/charts/bars-psk12-ecdhe.png"
set title "psk12-ecdhe: conn per s per server core (medians)"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.7
set xtics rotate by -30
set yrange [0:*]
unset key
plot "bench/results/20261126T052625Z/charts/data/bars-psk12-ecdhe.dat" using 2:xtic(1) lc rgb "#3a78b5" notitle
set key outside right top
set xtics norotate
set autoscale
set output "bench/results/20261126T052625Z/charts/rate-psk12-ecdhe.png"
set title "psk12-ecdhe: rate per second, round 1 (warm-up: first second)"
set xlabel "second"
set ylabel "per second"
set style data linespoints
set yrange [0:*]
plot "bench/results/20261126T052625Z/charts/data/rate-psk12-ecdhe-tern-gateway.dat" using 1:2 with linespoints title "tern-gateway", "bench/results/20261126T052625Z/charts/data/rate-psk12-ecdhe-stunnel-psk.dat" using 1:2 with linespoints title "stunnel-psk"
unset xlabel
unset ylabel
set autoscale
set output "bench/results/20261126T052625Z/charts/latency-psk12-ecdhe.png"
set title "psk12-ecdhe: latency percentiles (us, median over rounds)"
set logscale y
set ylabel "microseconds"
set xrange [-0.5:4.5]
plot "bench/results/20261126T052625Z/charts/data/lat-psk12-ecdhe-tern-gateway.dat" using 1:3:xtic(2) with linespoints title "tern-gateway", "bench/results/20261126T052625Z/charts/data/lat-psk12-ecdhe-stunnel-psk.dat" using 1:3:xtic(2) with linespoints title "stunnel-psk"
unset logscale y
unset ylabel
set autoscale
set output "bench/results/20261126T052625Z/charts/bars-psk13-dhe.png"
set title "psk13-dhe: conn per s per server core (medians)"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.7
set xtics rotate by -30
set yrange [0:*]
unset key
plot "bench/results/20261126T052625Z/charts/data/bars-psk13-dhe.dat" using 2:xtic(1) lc rgb "#3a78b5" notitle
set key outside right top
set xtics norotate
set autoscale
set output "bench/results/20261126T052625Z/charts/rate-psk13-dhe.png"
set title "psk13-dhe: rate per second, round 1 (warm-up: first second)"
set xlabel "second"
set ylabel "per second"
set style data linespoints
set yrange [0:*]
plot "bench/results/20261126T052625Z/charts/data/rate-psk13-dhe-tern-gateway.dat" using 1:2 with linespoints title "tern-gateway", "bench/results/20261126T052625Z/charts/data/rate-psk13-dhe-stunnel-psk.dat" using 1:2 with linespoints title "stunnel-psk"
unset xlabel
unset ylabel
set autoscale
set output "bench/results/20261126T052625Z/charts/latency-psk13-dhe.png"
set title "psk13-dhe: latency percentiles (us, median over rounds)"
set logscale y
set ylabel "microseconds"
set xrange [-0.5:4.5]
plot "bench/results/20261126T052625Z/charts/data/lat-psk13-dhe-tern-gateway.dat" using 1:3:xtic(2) with linespoints title "tern-gateway", "bench/results/20261126T052625Z/charts/data/lat-psk13-dhe-stunnel-psk.dat" using 1:3:xtic(2) with linespoints title "stunnel-psk"
unset logscale y
unset ylabel
set autoscale
set output "bench/results/20261126T052625Z/charts/bars-bulk.png"
set title "bulk: MB per s per server core (medians)"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.7
set xtics rotate by -30
set yrange [0:*]
unset key
plot "bench/results/20261126T052625Z/charts/data/bars-bulk.dat" using 2:xtic(1) lc rgb "#3a78b5" notitle
set key outside right top
set xtics norotate
set autoscale
set output "bench/results/20261126T052625Z/charts/rate-bulk.png"
set title "bulk: rate per second, round 1 (warm-up: first second)"
set xlabel "second"
set ylabel "per second"
set style data linespoints
set yrange [0:*]
plot "bench/results/20261126T052625Z/charts/data/rate-bulk-tern-ec.dat" using 1:2 with linespoints title "tern-ec", "bench/results/20261126T052625Z/charts/data/rate-bulk-nginx-px.dat" using 1:2 with linespoints title "nginx-px", "bench/results/20261126T052625Z/charts/data/rate-bulk-haproxy-px.dat" using 1:2 with linespoints title "haproxy-px", "bench/results/20261126T052625Z/charts/data/rate-bulk-stunnel-ec.dat" using 1:2 with linespoints title "stunnel-ec"
unset xlabel
unset ylabel
set autoscale
set output "bench/results/20261126T052625Z/charts/bars-echo.png"
set title "echo: req per s per server core (medians)"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.7
set xtics rotate by -30
set yrange [0:*]
unset key
plot "bench/results/20261126T052625Z/charts/data/bars-echo.dat" using 2:xtic(1) lc rgb "#3a78b5" notitle
set key outside right top
set xtics norotate
set autoscale
set output "bench/results/20261126T052625Z/charts/rate-echo.png"
set title "echo: rate per second, round 1 (warm-up: first second)"
set xlabel "second"
set ylabel "per second"
set style data linespoints
set yrange [0:*]
plot "bench/results/20261126T052625Z/charts/data/rate-echo-tern-ec.dat" using 1:2 with linespoints title "tern-ec", "bench/results/20261126T052625Z/charts/data/rate-echo-nginx-px.dat" using 1:2 with linespoints title "nginx-px", "bench/results/20261126T052625Z/charts/data/rate-echo-haproxy-px.dat" using 1:2 with linespoints title "haproxy-px", "bench/results/20261126T052625Z/charts/data/rate-echo-stunnel-ec.dat" using 1:2 with linespoints title "stunnel-ec"
unset xlabel
unset ylabel
set autoscale
set output "bench/results/20261126T052625Z/charts/latency-echo.png"
set title "echo: latency percentiles (us, median over rounds)"
set logscale y
set ylabel "microseconds"
set xrange [-0.5:4.5]
plot "bench/results/20261126T052625Z/charts/data/lat-echo-tern-ec.dat" using 1:3:xtic(2) with linespoints title "tern-ec", "bench/results/20261126T052625Z/charts/data/lat-echo-nginx-px.dat" using 1:3:xtic(2) with linespoints title "nginx-px", "bench/results/20261126T052625Z/charts/data/lat-echo-haproxy-px.dat" using 1:3:xtic(2) with linespoints title "haproxy-px", "bench/results/20261126T052625Z/charts/data/lat-echo-stunnel-ec.dat" using 1:3:xtic(2) with linespoints title "stunnel-ec"
unset logscale y
unset ylabel
set autoscale
set output "bench/results/20261126T052625Z/charts/bars-idle.png"
set title "idle: KiB per idle connection (medians)"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.7
set xtics rotate by -30
set yrange [0:*]
unset key
plot "bench/results/20261126T052625Z/charts/data/bars-idle.dat" using 2:xtic(1) lc rgb "#3a78b5" notitle
set key outside right top
set xtics norotate
set autoscale
set output "bench/results/20261126T052625Z/charts/bars-psk4-tls12-psk.png"
set title "psk4-tls12-psk: conn per s per server core (medians)"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.7
set xtics rotate by -30
set yrange [0:*]
unset key
plot "bench/results/20261126T052625Z/charts/data/bars-psk4-tls12-psk.dat" using 2:xtic(1) lc rgb "#3a78b5" notitle
set key outside right top
set xtics norotate
set autoscale
set output "bench/results/20261126T052625Z/charts/bars-psk4-tls12-ecdhe-psk.png"
set title "psk4-tls12-ecdhe-psk: conn per s per server core (medians)"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.7
set xtics rotate by -30
set yrange [0:*]
unset key
plot "bench/results/20261126T052625Z/charts/data/bars-psk4-tls12-ecdhe-psk.dat" using 2:xtic(1) lc rgb "#3a78b5" notitle
set key outside right top
set xtics norotate
set autoscale
set output "bench/results/20261126T052625Z/charts/bars-psk4-tls13-psk_ke.png"
set title "psk4-tls13-psk_ke: conn per s per server core (medians)"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.7
set xtics rotate by -30
set yrange [0:*]
unset key
plot "bench/results/20261126T052625Z/charts/data/bars-psk4-tls13-psk_ke.dat" using 2:xtic(1) lc rgb "#3a78b5" notitle
set key outside right top
set xtics norotate
set autoscale
set output "bench/results/20261126T052625Z/charts/bars-psk4-tls13-psk_dhe_ke.png"
set title "psk4-tls13-psk_dhe_ke: conn per s per server core (medians)"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.7
set xtics rotate by -30
set yrange [0:*]
unset key
plot "bench/results/20261126T052625Z/charts/data/bars-psk4-tls13-psk_dhe_ke.dat" using 2:xtic(1) lc rgb "#3a78b5" notitle
set key outside right top
set xtics norotate
set autoscale
set output "bench/results/20261126T052625Z/charts/ratios.png"
set rmargin 12
set title "tern / peer, rate per server core (1 = even; echo row: CPU at a fixed rate)"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.7
set xtics rotate by -45 font ",8"
set yrange [0:*]
unset key
plot "bench/results/20261126T052625Z/charts/data/ratios.dat" using 2:xtic(1) lc rgb "#b5563a" notitle, 1 lc rgb "black" dt 2 notitle
