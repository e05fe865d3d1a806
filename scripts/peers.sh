#!/bin/sh
# Replays the SQL test scripts of sluice's peers (Debezium, Maxwell,
# python-mysql-replication) on a fresh MariaDB source each, replicates each
# with one pipeline (ddl: apply, on_conflict: stop) and compares every table
# (internal/difftest's TestPeers). Not part of make test: it needs the
# peers' repositories, and takes minutes.
#
#   scripts/peers.sh [OUT_DIR]
#
# The repositories are cloned (bare, blobs on demand) under
# ${PEERS_CACHE:-$HOME/.cache/sluice-peers}; a bare or normal git
# directory already there (DEBEZIUM_GIT, MAXWELL_GIT, PYMYSQL_GIT point at
# one elsewhere) is used as it is. The scripts are extracted into OUT_DIR
# (default: a temporary directory) as one .sql file each:
#   debezium-NAME.sql  debezium-connector-binlog/src/test/resources/ddl/*.sql
#                      (debezium-connector-mysql/... in older versions)
#   maxwell-DIR-NAME.sql  src/test/resources/sql/{ddl,json,rows,schema}/*:
#                      expected-output lines (->) dropped, one statement per
#                      unindented line, continuation lines indented
#   pymysql-TEST.sql   the statements each TestDataType.test_* of
#                      pymysqlreplication/tests/test_data_type.py runs
#                      (recorded by running the test body against a stand-in)
# Nothing of theirs is kept in this repository.
set -eu
out=${1:-$(mktemp -d -t sluice-peers-XXXXXX)}
cache=${PEERS_CACHE:-$HOME/.cache/sluice-peers}
mkdir -p "$out" "$cache"

# gitdir NAME URL OVERRIDE: a git directory holding the repository.
gitdir() {
	if [ -n "$3" ]; then echo "$3"; return; fi
	d=$cache/$1.git
	[ -d "$d" ] || git clone -q --bare --filter=blob:none "$2" "$d" >&2
	echo "$d"
}
deb=$(gitdir debezium https://github.com/debezium/debezium "${DEBEZIUM_GIT:-}")
mxw=$(gitdir maxwell https://github.com/zendesk/maxwell "${MAXWELL_GIT:-}")
pym=$(gitdir pymysql https://github.com/julien-duponchelle/python-mysql-replication "${PYMYSQL_GIT:-}")

ls_files() { git --git-dir="$1" ls-tree -r --name-only HEAD -- "$2" 2>/dev/null || true; }
show() { git --git-dir="$1" show "HEAD:$2"; }

# Debezium.
files=$(ls_files "$deb" debezium-connector-binlog/src/test/resources/ddl/ | grep '\.sql$' || true)
[ -n "$files" ] || files=$(ls_files "$deb" debezium-connector-mysql/src/test/resources/ddl/ | grep '\.sql$' || true)
for f in $files; do
	show "$deb" "$f" >"$out/debezium-$(basename "$f" .sql).sql"
done

# Maxwell: its tests' setup (MaxwellTestSupport.setupSchema: the
# databases shard_1 and shard_2 and the tables of sql/schema/*.sql, each
# file one statement) precedes each json and rows script; the ddl scripts
# (statements its parser reads) run as they are.
mxsetup=$out/.maxwell-setup
{
	printf 'CREATE DATABASE IF NOT EXISTS shard_2;\nDROP DATABASE IF EXISTS shard_1;\nCREATE DATABASE shard_1;\nCREATE DATABASE IF NOT EXISTS test;\nUSE shard_1;\n'
	for f in $(ls_files "$mxw" src/test/resources/sql/schema/ | grep '\.sql$' | grep -v /sharded_55.sql); do
		show "$mxw" "$f" | sed -e 's/[[:space:]]*;*[[:space:]]*$//' | awk '{ a[NR] = $0 } END { n = NR; while (n > 0 && a[n] == "") n--; for (i = 1; i <= n; i++) print a[i] (i == n ? ";" : "") }'
	done
} >"$mxsetup"
for f in $(ls_files "$mxw" src/test/resources/sql/ | grep -E '/sql/(ddl|json|rows)/'); do
	case $f in *.javascript) continue ;; esac
	dir=$(basename "$(dirname "$f")")
	dst=$out/maxwell-$dir-$(basename "$f" .sql).sql
	if [ "$dir" = ddl ]; then : >"$dst"; else cp "$mxsetup" "$dst"; fi
	show "$mxw" "$f" | awk '
		/^[ \t]*->/ { next }
		/^[ \t]*$/ { next }
		/^[ \t]*(--|#)/ { next }
		/^[ \t)]/ { stmt = stmt "\n" $0; next }
		{ if (stmt != "") print end(stmt); stmt = $0 }
		END { if (stmt != "") print end(stmt) }
		function end(s) { sub(/[ \t]*;?[ \t]*$/, "", s); return s ";" }
	' >>"$dst"
done
rm -f "$mxsetup"

# python-mysql-replication: run each test body against a recorder.
show "$pym" pymysqlreplication/tests/test_data_type.py >"$out/.test_data_type.py"
python3 - "$out/.test_data_type.py" "$out" <<'EOF'
import ast, copy, decimal, json, os, sys
from unittest import mock

path, out = sys.argv[1], sys.argv[2]
tree = ast.parse(open(path).read())

class Recorder:
    def __init__(self):
        self.sql = []
    def execute(self, q, *args):
        self.sql.append(q)
        return mock.MagicMock()
    def create_and_insert_value(self, create, insert):
        self.sql += [create, insert, "COMMIT"]
        return mock.MagicMock()
    def create_table(self, create):
        self.sql.append(create)
        return mock.MagicMock()
    def isMariaDB(self):
        return True
    def tearDown(self):
        self.sql.append("DROP TABLE IF EXISTS test")
    def setUp(self):
        pass
    def __getattr__(self, name):
        if name.startswith("is"):
            return lambda *a, **k: False
        return mock.MagicMock()

for cls in tree.body:
    if not isinstance(cls, ast.ClassDef) or cls.name != "TestDataType":
        continue
    for fn in cls.body:
        if not isinstance(fn, ast.FunctionDef) or not fn.name.startswith("test_"):
            continue
        ns = {"Decimal": decimal.Decimal, "json": json, "copy": copy, "__builtins__": __builtins__}
        for name in ("encode_value", "to_binary_dict", "to_binary_list"):
            ns[name] = lambda *a, **k: mock.MagicMock()
        exec(compile(ast.Module(body=[fn], type_ignores=[]), path, "exec"), ns)
        rec = Recorder()
        try:
            ns[fn.name](rec)
        except Exception:
            pass  # assertions and helpers beyond the recorder; the statements so far ran
        sql = [s.strip().rstrip(";") for s in rec.sql if isinstance(s, str) and s.strip()]
        if not sql:
            continue
        with open(os.path.join(out, "pymysql-%s.sql" % fn.name[len("test_"):]), "w") as f:
            f.write("SET GLOBAL binlog_row_metadata='FULL';\n")
            for s in sql:
                f.write(s + ";\n")
EOF
rm -f "$out/.test_data_type.py"

echo "$(ls "$out"/*.sql | wc -l) scripts in $out" >&2
[ -z "${PEERS_EXTRACT_ONLY:-}" ] || exit 0
cd "$(dirname "$0")/.."
SLUICE_PEERS_DIR=$out go test ./internal/difftest -run '^TestPeers$' -count=1 -timeout 3h -v
