#!/usr/bin/env bash
# Reference start wrapper for the `main` container of a model-engine vLLM endpoint: the runbook's
# "timing coordination" as a script a team can mount (e.g. from a ConfigMap) and use as the command.
#
#   start_vllm.sh [VLLM COMMAND...]     (default: python -m vllm_server --model $MODEL_DIR --port 5005 ...)
#
# 1. locate the S3 tool (s5cmd, else aws, else `pip install --quiet --no-cache-dir awscli`),
# 2. download CHECKPOINT into MODEL_DIR,
# 3. wait until config.json and every shard of model.safetensors.index.json are present and no file
#    is under a download tool's temporary name (awscli <name>.<8 chars>, s5cmd <name><digits>, .tmp),
# 4. verify every model file's size against the bucket listing,
# 5. exec vLLM. Any failure exits non-zero with a line saying what is wrong, before vLLM starts.
#
# Environment: CHECKPOINT (s3://bucket/prefix/, required), MODEL_DIR (model_files),
# S3_TOOL (auto|s5cmd|aws), S3_ENDPOINT_URL or AWS_ENDPOINT_URL, AWS_* credentials,
# WAIT_TIMEOUT (seconds, 3600), INCLUDE (space-separated patterns; default model-engine's s5cmd set).
set -euo pipefail

CHECKPOINT=${CHECKPOINT:?set CHECKPOINT to the s3:// prefix of the model}
CHECKPOINT="${CHECKPOINT%/}/"
MODEL_DIR=${MODEL_DIR:-model_files}
S3_TOOL=${S3_TOOL:-auto}
ENDPOINT_URL=${S3_ENDPOINT_URL:-${AWS_ENDPOINT_URL:-}}
WAIT_TIMEOUT=${WAIT_TIMEOUT:-3600}
INCLUDE=${INCLUDE:-"*.model *.model.v* *.json *.safetensors *.txt *.jinja"}
export AWS_EC2_METADATA_DISABLED=${AWS_EC2_METADATA_DISABLED:-true}

log() { echo "[start-wrapper] $(date -u +%H:%M:%S) $*"; }
die() { log "ERROR: $*"; exit 1; }

wanted() {  # is this base name one the download fetches?
  local base=${1##*/} pat
  case $base in optimizer*) return 1 ;; esac
  for pat in $INCLUDE; do
    # shellcheck disable=SC2254
    case $base in $pat) return 0 ;; esac
  done
  return 1
}

# ---- 1. the S3 tool
ep_args=()
if [ -n "$ENDPOINT_URL" ]; then ep_args=(--endpoint-url "$ENDPOINT_URL"); fi
if [ "$S3_TOOL" = auto ]; then
  if [ -x ./s5cmd ] || command -v s5cmd >/dev/null; then S3_TOOL=s5cmd; else S3_TOOL=aws; fi
fi
case $S3_TOOL in
  s5cmd) S5CMD=$( [ -x ./s5cmd ] && echo ./s5cmd || command -v s5cmd ) || die "s5cmd not found" ;;
  aws)
    if ! command -v aws >/dev/null; then
      log "installing awscli (pip --no-cache-dir keeps this from taking 30 minutes)"
      pip install --quiet --no-cache-dir awscli || die "could not install awscli"
    fi ;;
  *) die "S3_TOOL must be auto, s5cmd or aws (got $S3_TOOL)" ;;
esac
log "tool: $S3_TOOL; checkpoint: $CHECKPOINT; into: $MODEL_DIR"

# ---- listing of the bucket: "SIZE KEY" lines relative to the prefix
listing=$(mktemp)
trap 'rm -f "$listing"' EXIT
if [ "$S3_TOOL" = s5cmd ]; then
  "$S5CMD" "${ep_args[@]}" ls "${CHECKPOINT}*" | awk '{ size=$(NF-1); key=$NF; print size, key }' > "$listing" \
    || die "cannot list $CHECKPOINT (check the credentials and the endpoint)"
else
  bucket=${CHECKPOINT#s3://}; prefix=${bucket#*/}; bucket=${bucket%%/*}
  aws "${ep_args[@]}" s3 ls --recursive "s3://$bucket/$prefix" | awk -v p="$prefix" '{ key=substr($0, index($0,$4)); sub("^" p, "", key); print $3, key }' > "$listing" \
    || die "cannot list $CHECKPOINT (check the credentials and the endpoint)"
fi
expected=0
while read -r size key; do
  [ -n "$key" ] || continue
  if wanted "$key"; then expected=$((expected + 1)); fi
done < "$listing"
[ "$expected" -gt 0 ] || die "no model files under $CHECKPOINT"
grep -q ' config.json$' "$listing" || die "$CHECKPOINT has no config.json"

# ---- 2. download
mkdir -p "$MODEL_DIR"
start=$(date +%s)
if [ "$S3_TOOL" = s5cmd ]; then
  inc=()
  for pat in $INCLUDE; do inc+=(--include "$pat"); done
  "$S5CMD" "${ep_args[@]}" --numworkers 64 cp --concurrency 10 "${inc[@]}" --exclude "optimizer*" "${CHECKPOINT}*" "$MODEL_DIR/" \
    || die "s5cmd download failed"
else
  aws "${ep_args[@]}" s3 sync "$CHECKPOINT" "$MODEL_DIR" --no-progress --exclude "optimizer*" || die "aws s3 sync failed"
fi

# ---- 3. wait for config.json, every indexed shard, and no temporary names
temp_files() {
  find "$MODEL_DIR" -type f \( -name '*.tmp' -o -regex '.*\.[A-Za-z0-9]\{8\}$' -o -regex '.*\.\(json\|safetensors\|txt\|model\|jinja\)[0-9]+$' \) \
    | while read -r f; do
        rel=${f#"$MODEL_DIR"/}
        case $rel in *.json|*.safetensors|*.txt|*.model|*.jinja) [ -n "$(awk -v k="$rel" '$2==k' "$listing")" ] && continue ;; esac
        echo "$rel"
      done
}
shards() {
  if [ -f "$MODEL_DIR/model.safetensors.index.json" ]; then
    python3 -c 'import json,sys; print("\n".join(sorted(set(json.load(open(sys.argv[1]))["weight_map"].values()))))' \
      "$MODEL_DIR/model.safetensors.index.json"
  else
    awk '$2 ~ /\.safetensors$/ {print $2}' "$listing"
  fi
}
while :; do
  missing=()
  [ -f "$MODEL_DIR/config.json" ] || missing+=(config.json)
  while read -r s; do [ -z "$s" ] || [ -f "$MODEL_DIR/$s" ] || missing+=("$s"); done < <(shards)
  temps=$(temp_files)
  if [ ${#missing[@]} -eq 0 ] && [ -z "$temps" ]; then break; fi
  if [ $(( $(date +%s) - start )) -ge "$WAIT_TIMEOUT" ]; then
    die "after ${WAIT_TIMEOUT}s still missing: ${missing[*]:-none}; temporary files: ${temps:-none}"
  fi
  if [ -z "$temps" ]; then
    die "download finished but files are missing: ${missing[*]}"
  fi
  log "waiting: ${#missing[@]} file(s) missing, temporary files: $(echo "$temps" | wc -l)"
  sleep 5
done

# ---- 4. sizes against the bucket
bad=0
while read -r size key; do
  if [ -z "$key" ] || ! wanted "$key"; then continue; fi
  if [ ! -f "$MODEL_DIR/$key" ]; then log "missing: $key"; bad=1; continue; fi
  have=$(stat -c %s "$MODEL_DIR/$key")
  if [ "$have" != "$size" ]; then log "size mismatch: $key has $have bytes, the bucket $size"; bad=1; fi
done < "$listing"
[ "$bad" -eq 0 ] || die "model files do not match $CHECKPOINT"
log "download verified: $expected file(s), $(du -sh "$MODEL_DIR" | cut -f1) in $(( $(date +%s) - start ))s"

# ---- 5. vLLM
if [ $# -eq 0 ]; then
  set -- python -m vllm_server --model "$MODEL_DIR" --port 5005 --host "::"
fi
log "exec: $*"
exec "$@"
