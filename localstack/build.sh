#!/usr/bin/env bash
# Builds what localstack/init/ready.d/10-deploy.sh deploys, from template.yaml:
#   localstack/build/functions.txt   one function folder name a line
#   localstack/build/routes.txt      METHOD PATH FUNCTION, one route a line
#   localstack/build/env.txt         FUNCTION NAME [VALUE]: the variables each function lists
#   localstack/build/config.txt      FUNCTION TIMEOUT MEMORY: each function's timeout (s) and memory (MB)
#   localstack/build/jwt.env         a fresh token key pair (JWT_SIGNING_KEYS, JWT_PUBLIC_KEYS),
#                                    unless TEMPWATCH_JWT_SIGNING_KEYS is set when the deploy runs
#   localstack/build/<name>.zip      the function's static bootstrap (provided.al2023)
# Run it on the host before starting LocalStack (the LocalStack image has no Go).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/localstack/build
rm -rf "$out"
mkdir -p "$out"

(cd infra && go run ./cmd/routes -template "$root/template.yaml" -functions) >"$out/functions.txt"
(cd infra && go run ./cmd/routes -template "$root/template.yaml") >"$out/routes.txt"
(cd infra && go run ./cmd/routes -template "$root/template.yaml" -env) >"$out/env.txt"
(cd infra && go run ./cmd/routes -template "$root/template.yaml" -config) >"$out/config.txt"
(cd infra && go run ./cmd/jwtkeys -kid localstack) >"$out/jwt.env"
chmod 600 "$out/jwt.env"

zipdir() { # zipfile dir: zip dir's files at the archive root, keeping modes
	if command -v zip >/dev/null; then
		(cd "$2" && zip -q -X -r "$1" .)
	else
		python3 - "$1" "$2" <<'PY'
import os, sys, zipfile
zf, d = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(zf, "w", zipfile.ZIP_DEFLATED) as z:
    for name in sorted(os.listdir(d)):
        z.write(os.path.join(d, name), name)
PY
	fi
}

while read -r fn; do
	[ -n "$fn" ] || continue
	echo "build functions/$fn"
	mkdir -p "$out/$fn"
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -tags lambda.norpc -ldflags='-s -w' \
		-o "$out/$fn/bootstrap" "./functions/$fn"
	zipdir "$out/$fn.zip" "$out/$fn"
done <"$out/functions.txt"
echo "built $(wc -l <"$out/functions.txt") functions, $(wc -l <"$out/routes.txt") routes into localstack/build"
