#!/bin/sh
# Installs what the tests need and a fresh Debian machine lacks: MariaDB
# (mariadbd, mariadb-install-db, mariadb-binlog), nats-server, promtool, and
# mydumper and sysbench (make bench-snapshot, make bench). The tests
# start their own throwaway servers; nothing here is started or configured.
set -e
missing=""
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || missing="$missing mariadb-server"
command -v mariadb-binlog >/dev/null 2>&1 || missing="$missing mariadb-client"
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing="$missing nats-server"
# promtool checks monitoring/'s alert rules and dashboard queries.
command -v promtool >/dev/null 2>&1 || missing="$missing prometheus"
command -v mydumper >/dev/null 2>&1 || missing="$missing mydumper" # make bench-snapshot's reference
command -v sysbench >/dev/null 2>&1 || missing="$missing sysbench" # make bench
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
	echo "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# policy-rc.d keeps the packages from starting their own services.
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
	apt-get install -y -qq $missing
	rm -f /usr/sbin/policy-rc.d
elif command -v sudo >/dev/null 2>&1; then
	echo "installing with sudo:$missing"
	sudo apt-get update -qq && sudo apt-get install -y -qq $missing
else
	echo "missing:$missing; install them (apt-get install$missing) and run make test again" >&2
	exit 1
fi
