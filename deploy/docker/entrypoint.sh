#!/bin/sh
# The container's entrypoint (under tini): fills in what a container needs and nothing else says,
# then replaces itself with `node kiln.js serve ...`, so that tini's child is the server and gets its
# SIGTERM. Every setting below yields to one already given by a flag, a KILN_* variable or the config
# file, because the server ranks them flags > KILN_* variables > config file > defaults, and a
# variable set here would beat the file.
#
# Arguments:
#   (none), or `serve [flags]`, or flags alone   kiln serve [flags], prepared as below
#   archive|bench|init|inspect|migrate|predict|help ...
#                                                that kiln command, as it is (docker run kiln inspect x.mar)
#   any other program on PATH (sh, node)         run as it is
#
# What `serve` gets:
#   Config file   The one named by --config, --ts-config, KILN_CONFIG or TS_CONFIG_FILE. Without one,
#                 KServe's storage layout is recognised: when $KILN_MODELS_DIR/config/config.properties
#                 exists, TS_CONFIG_FILE points at it (its model_store is usually
#                 /mnt/models/model-store; see docs/reference/server-config.md for how Kiln reads it).
#   Addresses     Each API listens on 0.0.0.0 (8080 inference, 8081 management, 8082 metrics) unless its
#                 KILN_*_ADDRESS variable is set or the config file sets its address. KServe's
#                 config.properties gives inference_address=http://0.0.0.0:8085: that is kept (declare
#                 that port in the ServingRuntime, or change the file).
#   gRPC          KServe v2 gRPC on 0.0.0.0:8085 unless KILN_GRPC_ADDRESS or the config file sets it. When
#                 the config file sets the inference address (KServe's config.properties puts REST on
#                 8085), gRPC is off unless KILN_GRPC_ADDRESS asks for it.
#   TS gRPC       TorchServe's gRPC APIs: inference on 0.0.0.0:7070, management on 0.0.0.0:7071, each
#                 unless its variable (KILN_TS_GRPC_INFERENCE_ADDRESS, KILN_TS_GRPC_MANAGEMENT_ADDRESS) or
#                 the config file sets it (config.properties: grpc_inference_address or grpc_inference_port,
#                 and the grpc_management_* pair). When the config file sets the inference address, both
#                 stay where the file or the server's defaults put them (127.0.0.1:7070 and :7071), as in
#                 TorchServe: under KServe, its wrapper calls them from inside the pod.
#   Models        Unless the flags, the variables or the config file name models or a model store:
#                 KILN_MODEL_STORE=$KILN_MODELS_DIR and KILN_MODELS=all, every archive in the folder.
#   Token         Unless KILN_TOKEN, KILN_TOKEN_FILE, --token-file or the config file's tokenFile gives
#                 one: the file $KILN_SECRET_FILE when it exists (a Docker or Kubernetes secret), else
#                 the token in $KILN_STATE_DIR/token, generated (32 random bytes, hex, mode 600) at the
#                 first start and kept for the next. KILN_GENERATE_TOKEN=false serves without a token.
#
# Variables of this script only (the server's own KILN_* variables are in server-config.md):
#   KILN_MODELS_DIR       the models mount (default /mnt/models)
#   KILN_SECRET_FILE      the token secret's path (default /run/secrets/kiln-token)
#   KILN_GENERATE_TOKEN   false: no generated token (default true)
#   KILN_BIN              the kiln CLI (default /opt/kiln/packages/cli/bin/kiln.js)
# KILN_STATE_DIR is the server's (--state-dir): the image sets /var/lib/kiln, and the script makes it.
set -eu

here=$(dirname "$0")
bin=${KILN_BIN:-/opt/kiln/packages/cli/bin/kiln.js}
models_dir=${KILN_MODELS_DIR:-/mnt/models}
secret_file=${KILN_SECRET_FILE:-/run/secrets/kiln-token}

say() {
  echo "kiln-entrypoint: $*" >&2
}

case "${1:-serve}" in
  serve) if [ $# -gt 0 ]; then shift; fi ;;
  -h | --help | -V | --version | archive | bench | init | inspect | migrate | predict | help) exec node "$bin" "$@" ;;
  -*) ;;
  *)
    if command -v "$1" >/dev/null 2>&1; then exec "$@"; fi
    exec node "$bin" "$@"
    ;;
esac

# What the flags give (both `--flag value` and `--flag=value`).
flag_config='' flag_ts_config='' flag_models='' flag_store='' flag_token=''
prev=''
for arg in "$@"; do
  case $prev in
    --config) flag_config=$arg ;;
    --ts-config) flag_ts_config=$arg ;;
  esac
  case $arg in
    --config=*) flag_config=${arg#--config=} ;;
    --ts-config=*) flag_ts_config=${arg#--ts-config=} ;;
    --models | --models=*) flag_models=1 ;;
    --model-store | --model-store=*) flag_store=1 ;;
    --token-file | --token-file=*) flag_token=1 ;;
  esac
  prev=$arg
done

# The config file the server will read, chosen as it chooses (server-config.ts, configFile).
config='' config_kind=auto
if [ -n "$flag_config" ]; then
  config=$flag_config
elif [ -n "$flag_ts_config" ]; then
  config=$flag_ts_config config_kind=properties
elif [ -n "${KILN_CONFIG:-}" ]; then
  config=$KILN_CONFIG
elif [ -n "${TS_CONFIG_FILE:-}" ]; then
  config=$TS_CONFIG_FILE config_kind=properties
elif [ -f "$models_dir/config/config.properties" ]; then
  export TS_CONFIG_FILE="$models_dir/config/config.properties"
  config=$TS_CONFIG_FILE config_kind=properties
  say "KServe's layout: reading $TS_CONFIG_FILE"
fi
file_keys=' '
if [ -n "$config" ]; then
  file_keys=" $(node "$here/config-keys.mjs" "$config" "$config_kind" || true) "
fi
# True when the config file sets the option (its Kiln key).
file_sets() {
  case $file_keys in *" $1 "*) return 0 ;; esac
  return 1
}

# Addresses: reachable from outside the container.
if [ -z "${KILN_INFERENCE_ADDRESS:-}" ] && ! file_sets inferenceAddress; then
  export KILN_INFERENCE_ADDRESS=http://0.0.0.0:8080
fi
if [ -z "${KILN_MANAGEMENT_ADDRESS:-}" ] && ! file_sets managementAddress; then
  export KILN_MANAGEMENT_ADDRESS=http://0.0.0.0:8081
fi
if [ -z "${KILN_METRICS_ADDRESS:-}" ] && ! file_sets metricsAddress; then
  export KILN_METRICS_ADDRESS=http://0.0.0.0:8082
fi
if [ -z "${KILN_GRPC_ADDRESS:-}" ] && ! file_sets grpcAddress; then
  if file_sets inferenceAddress; then
    export KILN_GRPC_ADDRESS=off
  else
    export KILN_GRPC_ADDRESS=0.0.0.0:8085
  fi
fi
if ! file_sets inferenceAddress; then
  if [ -z "${KILN_TS_GRPC_INFERENCE_ADDRESS:-}" ] && ! file_sets tsGrpcInferenceAddress; then
    export KILN_TS_GRPC_INFERENCE_ADDRESS=0.0.0.0:7070
  fi
  if [ -z "${KILN_TS_GRPC_MANAGEMENT_ADDRESS:-}" ] && ! file_sets tsGrpcManagementAddress; then
    export KILN_TS_GRPC_MANAGEMENT_ADDRESS=0.0.0.0:7071
  fi
fi

# Models: every archive in the mounted folder.
models_given='' store_given=''
if [ -n "${KILN_MODELS:-}" ] || [ -n "$flag_models" ] || file_sets models; then models_given=1; fi
if [ -n "${KILN_MODEL_STORE:-}" ] || [ -n "$flag_store" ] || file_sets modelStore; then store_given=1; fi
if [ -z "$models_given" ] && [ -z "$store_given" ]; then
  if [ -d "$models_dir" ]; then
    export KILN_MODEL_STORE="$models_dir" KILN_MODELS=all
  else
    say "no models: $models_dir is not a folder, and no --models, KILN_MODELS or config file names any"
  fi
fi

# State folder: the snapshot, and the generated token.
export KILN_STATE_DIR="${KILN_STATE_DIR:-/var/lib/kiln}"
mkdir -p "$KILN_STATE_DIR"

# Token.
if [ -z "${KILN_TOKEN:-}" ] && [ -z "${KILN_TOKEN_FILE:-}" ] && [ -z "$flag_token" ] && ! file_sets tokenFile; then
  token_file="$KILN_STATE_DIR/token"
  if [ -f "$secret_file" ]; then
    export KILN_TOKEN_FILE="$secret_file"
  elif [ "${KILN_GENERATE_TOKEN:-true}" = false ] || [ "${KILN_GENERATE_TOKEN:-true}" = 0 ]; then
    say "no token: KILN_GENERATE_TOKEN=$KILN_GENERATE_TOKEN, and no KILN_TOKEN, KILN_TOKEN_FILE or $secret_file"
  elif [ -s "$token_file" ]; then
    export KILN_TOKEN_FILE="$token_file"
    say "no token was given: using the one generated at an earlier start, in $token_file (docker exec <container> cat $token_file)"
  elif ! [ -w "$KILN_STATE_DIR" ]; then
    say "no token was given, and $KILN_STATE_DIR, where one would be generated, is not writable (a read-only root?): mount a volume there (-v kiln-state:$KILN_STATE_DIR), or give a token (KILN_TOKEN_FILE, KILN_TOKEN, $secret_file)"
    exit 1
  else
    # umask 077: the file is created readable by this user only (600).
    (umask 077 && node -e "process.stdout.write(require('node:crypto').randomBytes(32).toString('hex') + '\n')" >"$token_file.tmp")
    mv "$token_file.tmp" "$token_file"
    export KILN_TOKEN_FILE="$token_file"
    say "no token was given (KILN_TOKEN, KILN_TOKEN_FILE or $secret_file), so one was generated in $token_file; clients send it as 'Authorization: Bearer <token>'; read it with: docker exec <container> cat $token_file"
  fi
fi

exec node "$bin" serve "$@"
