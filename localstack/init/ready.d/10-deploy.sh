#!/usr/bin/env bash
# LocalStack ready hook: deploys every function and the REST API that
# template.yaml declares, from what localstack/build.sh produced (mounted at
# $TEMPWATCH_BUILD), and runs the migrate function before the REST API goes
# up. Adding a function or route needs no edit here.
#
# Functions are named after their folder (clients, ingest, ...); the bridge
# invokes `ingest` directly through the Lambda API (LAMBDA_ENDPOINT=
# http://localhost:4566, INGEST_FUNCTION_NAME=ingest): no event source mapping.
set -euo pipefail

BUILD=${TEMPWATCH_BUILD:-/opt/tempwatch/build}
REGION=${AWS_DEFAULT_REGION:-us-east-1}
ACCOUNT=000000000000
STAGE=${TEMPWATCH_STAGE:-v1}
API_NAME=${TEMPWATCH_API_NAME:-tempwatch}
ROLE=arn:aws:iam::$ACCOUNT:role/tempwatch-lambda

if [ ! -s "$BUILD/functions.txt" ] || [ ! -f "$BUILD/routes.txt" ] || [ ! -s "$BUILD/env.txt" ] || [ ! -s "$BUILD/config.txt" ]; then
	echo "tempwatch: $BUILD/functions.txt, routes.txt, env.txt or config.txt missing; run localstack/build.sh on the host first" >&2
	exit 1
fi

# Each function gets the variables template.yaml lists for it and no other
# (build.sh wrote them into env.txt): the signing key reaches the auth
# function alone. A value is TEMPWATCH_<NAME> when set, else the template's
# own, else the local default below; the functions reach the host's (or the
# compose stack's published) services through host.docker.internal. Secrets
# have no default: the token key is TEMPWATCH_JWT_SIGNING_KEYS and
# TEMPWATCH_JWT_PUBLIC_KEYS, or the pair build.sh generated; mqttauth fails
# to start, naming them, until TEMPWATCH_MQTT_BROKER_SECRET and
# TEMPWATCH_MQTT_BRIDGE_PASSWORD are set.
if [ -z "${TEMPWATCH_JWT_SIGNING_KEYS:-}" ]; then
	if [ ! -s "$BUILD/jwt.env" ]; then
		echo "tempwatch: no token key: set TEMPWATCH_JWT_SIGNING_KEYS and TEMPWATCH_JWT_PUBLIC_KEYS (make keys prints a pair), or run localstack/build.sh, which generates one" >&2
		exit 1
	fi
	TEMPWATCH_JWT_SIGNING_KEYS=$(sed -n 's/^JWT_SIGNING_KEYS=//p' "$BUILD/jwt.env")
	TEMPWATCH_JWT_PUBLIC_KEYS=$(sed -n 's/^JWT_PUBLIC_KEYS=//p' "$BUILD/jwt.env")
fi
if [ -z "${TEMPWATCH_JWT_PUBLIC_KEYS:-}" ]; then
	echo "tempwatch: TEMPWATCH_JWT_SIGNING_KEYS is set but TEMPWATCH_JWT_PUBLIC_KEYS is not: set its public half too" >&2
	exit 1
fi

local_default() {
	case $1 in
	DATABASE_URL) echo "postgres://tempwatch:tempwatch-dev@host.docker.internal:5432/tempwatch?sslmode=disable" ;;
	REDIS_URL) echo "redis://host.docker.internal:6379/0" ;;
	MONGODB_URL) echo "mongodb://host.docker.internal:27017/tempwatch" ;;
	JWT_ISSUER) echo "tempwatch" ;;
	JWT_AUDIENCE) echo "tempwatch-api" ;;
	esac
}

# env_json FUNCTION: the Lambda Environment of FUNCTION.
env_json() {
	local fn=$1 f name value override sep=""
	printf '{"Variables":{'
	while read -r f name value; do
		[ "$f" = "$fn" ] || continue
		override="TEMPWATCH_$name"
		value=${!override:-${value:-$(local_default "$name")}}
		[ -n "$value" ] || continue
		case $value in *'"'* | *'\'*)
			echo "tempwatch: $override holds a quote or a backslash, which this script does not escape" >&2
			return 1 ;;
		esac
		printf '%s"%s":"%s"' "$sep" "$name" "$value"
		sep=,
	done <"$BUILD/env.txt"
	printf '}}'
}

# fn_config FUNCTION: sets timeout (seconds) and memory (MB) as template.yaml
# gives them to FUNCTION (build.sh wrote them into config.txt).
fn_config() {
	local f t m
	timeout="" memory=""
	while read -r f t m; do
		if [ "$f" = "$1" ]; then timeout=$t memory=$m; fi
	done <"$BUILD/config.txt"
	if [ -z "$timeout" ] || [ -z "$memory" ]; then
		echo "tempwatch: $BUILD/config.txt has no timeout and memory for $1; run localstack/build.sh again" >&2
		return 1
	fi
}

# --- functions -----------------------------------------------------------------
while read -r fn; do
	[ -n "$fn" ] || continue
	zip="$BUILD/$fn.zip"
	[ -f "$zip" ] || { echo "tempwatch: $zip missing; run localstack/build.sh" >&2; exit 1; }
	fn_config "$fn"
	if awslocal lambda get-function --function-name "$fn" >/dev/null 2>&1; then
		echo "tempwatch: updating function $fn"
		awslocal lambda update-function-code --function-name "$fn" --zip-file "fileb://$zip" >/dev/null
		awslocal lambda wait function-updated-v2 --function-name "$fn"
		awslocal lambda update-function-configuration --function-name "$fn" \
			--memory-size "$memory" \
			--timeout "$timeout" \
			--environment "$(env_json "$fn")" >/dev/null
	else
		echo "tempwatch: creating function $fn"
		awslocal lambda create-function \
			--function-name "$fn" \
			--runtime provided.al2023 \
			--handler bootstrap \
			--architectures x86_64 \
			--memory-size "$memory" \
			--timeout "$timeout" \
			--role "$ROLE" \
			--zip-file "fileb://$zip" \
			--environment "$(env_json "$fn")" >/dev/null
	fi
	awslocal lambda wait function-active-v2 --function-name "$fn"
done <"$BUILD/functions.txt"

# --- database schema ---------------------------------------------------------------
# The functions refuse a schema older than their build, so the migrate
# function runs (a plain invoke) before the REST API goes up; if it fails,
# so does the deploy.
echo "tempwatch: migrating the database (function migrate)"
answer=$(mktemp)
failed=$(awslocal lambda invoke --function-name migrate --cli-binary-format raw-in-base64-out \
	--cli-read-timeout 0 --payload '{}' --query FunctionError --output text "$answer")
echo "tempwatch: migrate answered $(cat "$answer")"
if [ "$failed" != "None" ]; then
	echo "tempwatch: migrate failed ($failed); its log: awslocal logs tail /aws/lambda/migrate" >&2
	exit 1
fi

# --- REST API --------------------------------------------------------------------
# Recreated on every run, so removed routes disappear too.
for old in $(awslocal apigateway get-rest-apis --query "items[?name=='$API_NAME'].id" --output text); do
	awslocal apigateway delete-rest-api --rest-api-id "$old"
done
api=$(awslocal apigateway create-rest-api --name "$API_NAME" --endpoint-configuration types=REGIONAL --query id --output text)
root_id=$(awslocal apigateway get-resources --rest-api-id "$api" --query "items[?path=='/'].id" --output text)

declare -A resource_ids=(["/"]="$root_id")

# resource PATH: prints the id of PATH's resource, creating it and its parents.
resource() {
	local path=$1 parent=/ current="" segment
	IFS=/ read -r -a segments <<<"${path#/}"
	for segment in "${segments[@]}"; do
		[ -n "$segment" ] || continue
		current="$current/$segment"
		if [ -z "${resource_ids[$current]:-}" ]; then
			resource_ids[$current]=$(awslocal apigateway create-resource --rest-api-id "$api" \
				--parent-id "${resource_ids[$parent]}" --path-part "$segment" --query id --output text)
		fi
		parent=$current
	done
}

while read -r method path fn; do
	[ -n "$method" ] || continue
	resource "$path"
	id=${resource_ids[$path]:-${resource_ids[/]}}
	echo "tempwatch: $method $path -> $fn"
	awslocal apigateway put-method --rest-api-id "$api" --resource-id "$id" \
		--http-method "$method" --authorization-type NONE >/dev/null
	awslocal apigateway put-integration --rest-api-id "$api" --resource-id "$id" \
		--http-method "$method" --type AWS_PROXY --integration-http-method POST \
		--uri "arn:aws:apigateway:$REGION:lambda:path/2015-03-31/functions/arn:aws:lambda:$REGION:$ACCOUNT:function:$fn/invocations" >/dev/null
done <"$BUILD/routes.txt"

while read -r fn; do
	[ -n "$fn" ] || continue
	awslocal lambda add-permission --function-name "$fn" --statement-id "apigateway-$api" \
		--action lambda:InvokeFunction --principal apigateway.amazonaws.com \
		--source-arn "arn:aws:execute-api:$REGION:$ACCOUNT:$api/*/*/*" >/dev/null 2>&1 || true
done <"$BUILD/functions.txt"

awslocal apigateway create-deployment --rest-api-id "$api" --stage-name "$STAGE" >/dev/null
echo "tempwatch: REST API $api deployed: http://localhost:4566/restapis/$api/$STAGE/_user_request_/"
echo "tempwatch:   (or http://$api.execute-api.localhost.localstack.cloud:4566/$STAGE/)"
