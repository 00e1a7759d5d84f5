#!/usr/bin/env bash
# Starts ClickHouse (Debian clickhouse-server) on loopback with data under $1,
# HTTP on port $2. Prints its PID. Used by bench/ingest.sh only.
set -euo pipefail
dir=$1; port=$2
mkdir -p "$dir"/{data,tmp,log}
cat > "$dir/config.xml" <<XML
<yandex>
  <logger><level>warning</level><log>$dir/log/clickhouse.log</log><errorlog>$dir/log/err.log</errorlog></logger>
  <http_port>$port</http_port>
  <tcp_port>$((port + 1))</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>$dir/data/</path>
  <tmp_path>$dir/tmp/</tmp_path>
  <users_config>$dir/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>536870912</mark_cache_size>
  <compression><case><method>zstd</method></case></compression>
</yandex>
XML
cat > "$dir/users.xml" <<XML
<yandex>
  <profiles><default><allow_experimental_low_cardinality_type>1</allow_experimental_low_cardinality_type></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
XML
/usr/sbin/clickhouse-server --config-file="$dir/config.xml" > "$dir/log/stdout.log" 2>&1 &
echo $!
