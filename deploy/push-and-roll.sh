#!/usr/bin/env bash
# Build, tag and push the images to the stack's ECR repositories, then roll
# the ECS services onto them (a CloudFormation update of the image tags) and
# wait until the services are stable. Prints every step and every command.
#
#   deploy/push-and-roll.sh [options] [-- Parameter=Value ...]
#
# Options:
#   --stack NAME        CloudFormation stack (default: interstella)
#   --template FILE     its template (default: deploy/interstella.yaml;
#                       deploy/hq.yaml for the admin stack, --services hq)
#   --region REGION     AWS region (default: the AWS CLI's)
#   --tag TAG           image tag (default: the git commit, -dirty if edited or with new files)
#   --services "A B"    which images (default: "monolith iridium magnesite";
#                       "hq" for the admin stack)
#   --arch ARCH         amd64 (default) or arm64 (Graviton: the stack's
#                       CpuArchitecture=ARM64); cross-compiled, not emulated;
#                       refused unless it matches the stack's architecture
#   --s3-bucket NAME    where the template is uploaded when it is over
#                       CloudFormation's 51,200 bytes for one sent inline
#                       (deploy/interstella.yaml is; default: $TEMPLATE_BUCKET,
#                       else interstella-templates-ACCOUNT-REGION, made if
#                       missing, as docs/aws.md makes it)
#   --no-build          push images already tagged SERVICE:TAG locally
#   --dry-run           print the commands, run nothing
# Anything after `--` is passed to the stack update as parameter overrides,
# e.g. `-- MonolithDesiredCount=2 IridiumDesiredCount=1 Strangled=iridium`.
# Parameters not named keep their current values. The admin stack:
#   deploy/push-and-roll.sh --stack interstella-hq --template deploy/hq.yaml \
#     --services hq -- HqDesiredCount=1
# Bash 3.2 or later (macOS' own bash too): no associative arrays, and an
# array that may be empty is expanded as ${A[@]+"${A[@]}"} (before 4.4,
# set -u calls "${A[@]}" of an empty array unbound).
set -euo pipefail
cd "$(dirname "$0")/.."

STACK=interstella
TEMPLATE=deploy/interstella.yaml
REGION=${AWS_REGION:-${AWS_DEFAULT_REGION:-}}
TAG=''
SERVICES="monolith iridium magnesite"
ARCH=amd64 BUILD=1 DRY_RUN=0
BUCKET=${TEMPLATE_BUCKET:-}
# CloudFormation's limit on a template sent in the request; a larger one
# must come from S3 (`cloudformation deploy --s3-bucket` uploads it there).
TEMPLATE_BODY_MAX=51200
OVERRIDES=()
AWS=(aws)
CLUSTER='' REGISTRY=''

# usage: the comment at the top of this file, without its '#'.
usage() { sed -n '2,/^$/{/^#/!q;s/^# \{0,1\}//;p}' "$0"; }

# usage_error MESSAGE: says what was wrong, then how to call, and exits 2.
usage_error() {
  {
    echo "deploy/push-and-roll.sh: $1"
    echo
    usage
  } >&2
  exit 2
}

# need_value FLAG [VALUE...]: stops with the usage unless FLAG has a value
# (not the end of the arguments, not empty, not another option).
need_value() {
  if [ $# -lt 2 ] || [ -z "$2" ] || [[ $2 == -* ]]; then
    usage_error "$1 needs a value"
  fi
}

parse_args() {
  while [ $# -gt 0 ]; do
    case $1 in
      --stack) need_value "$@"; STACK=$2; shift 2 ;;
      --template) need_value "$@"; TEMPLATE=$2; shift 2 ;;
      --region) need_value "$@"; REGION=$2; shift 2 ;;
      --tag) need_value "$@"; TAG=$2; shift 2 ;;
      --services) need_value "$@"; SERVICES=$2; shift 2 ;;
      --arch) need_value "$@"; ARCH=$2; shift 2 ;;
      --s3-bucket) need_value "$@"; BUCKET=$2; shift 2 ;;
      --no-build) BUILD=0; shift ;;
      --dry-run) DRY_RUN=1; shift ;;
      --) shift; OVERRIDES=("$@"); break ;;
      -h | --help) usage; exit 0 ;;
      *) usage_error "unknown option: $1" ;;
    esac
  done
  if [ -z "$TAG" ]; then
    TAG=$(git rev-parse --short=12 HEAD 2>/dev/null || date +%Y%m%d%H%M%S)
    if edited; then TAG="$TAG-dirty-$(date +%H%M%S)"; fi
  fi
  case $ARCH in amd64 | arm64) ;; *) usage_error "--arch: amd64 or arm64, not $ARCH" ;; esac
  if [ -n "$REGION" ]; then AWS+=(--region "$REGION"); fi
}

step() { printf '\n==> %s\n' "$*"; }
run() {
  printf '+ %s\n' "$*"
  [ "$DRY_RUN" = 1 ] || "$@"
}
output() { # the stack output named $1
  if [ "$DRY_RUN" = 1 ]; then
    echo "<$1>"
  else
    "${AWS[@]}" cloudformation describe-stacks --stack-name "$STACK" \
      --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
  fi
}
cap() { printf '%s%s' "$(tr '[:lower:]' '[:upper:]' <<<"${1:0:1}")" "${1:1}"; }
# repo SERVICE: the service's ECR repository URI, read by read_stack_outputs
# into REPO_<service>.
repo() { local name="REPO_$1"; printf '%s' "${!name}"; }

# check_architecture: refuses to push images of one architecture to a stack
# whose tasks run the other (its CpuArchitecture, or the one this update
# sets): ECS could not start them, and the rollout would stall until the
# circuit breaker rolled it back. A stack without the parameter passes.
check_architecture() {
  local wanted=X86_64 stack='' override fix=amd64
  if [ "$ARCH" = arm64 ]; then wanted=ARM64; fi
  for override in ${OVERRIDES[@]+"${OVERRIDES[@]}"}; do
    case $override in CpuArchitecture=*) stack=${override#*=} ;; esac
  done
  step "checking that stack $STACK runs $wanted tasks (--arch $ARCH)"
  if [ -z "$stack" ]; then
    if [ "$DRY_RUN" = 1 ]; then
      echo "(not asked in a dry run)"
      return
    fi
    stack=$("${AWS[@]}" cloudformation describe-stacks --stack-name "$STACK" \
      --query "Stacks[0].Parameters[?ParameterKey=='CpuArchitecture'].ParameterValue" --output text)
  fi
  case $stack in
    '' | None | "$wanted") ;;
    *)
      if [ "$stack" = ARM64 ]; then fix=arm64; fi
      echo "deploy/push-and-roll.sh: stack $STACK runs CpuArchitecture=$stack tasks, which could not start $ARCH images: push with --arch $fix" >&2
      exit 2
      ;;
  esac
}

read_stack_outputs() {
  step "reading the outputs of stack $STACK"
  CLUSTER=$(output ClusterName)
  local svc
  for svc in $SERVICES; do
    printf -v "REPO_$svc" '%s' "$(output "$(cap "$svc")RepositoryUri")"
    echo "$svc -> $(repo "$svc"):$TAG"
  done
  REGISTRY=$(repo "${SERVICES%% *}")
  REGISTRY=${REGISTRY%%/*}
}

log_in_to_ecr() {
  step "logging in to ECR ($REGISTRY)"
  if [ "$DRY_RUN" = 1 ]; then
    echo "+ ${AWS[*]} ecr get-login-password | docker login --username AWS --password-stdin $REGISTRY"
  else
    "${AWS[@]}" ecr get-login-password | docker login --username AWS --password-stdin "$REGISTRY"
  fi
}

# Whether the build context differs from the commit: edits, or files git
# does not track in what .dockerignore sends (a new source file under
# crates/ is built into the images as surely as an edited one).
edited() {
  ! git diff --quiet HEAD 2>/dev/null \
    || [ -n "$(git ls-files --others --exclude-standard -- Cargo.toml Cargo.lock src .cargo crates 2>/dev/null)" ]
}

# build_images: docker/Dockerfile, one target per service. BuildKit (the
# default where buildx is installed) builds for --platform, compiling on this
# machine's architecture either way; the classic builder (DOCKER_BUILDKIT=0)
# takes TARGETARCH only, and its images' configuration names this machine's
# architecture whatever the binary's, so build arm64 images with BuildKit.
build_images() {
  local svc platform=() revision
  if [ "${DOCKER_BUILDKIT:-1}" != 0 ]; then platform=(--platform "linux/$ARCH"); fi
  # The commit, in the images' org.opencontainers.image.revision label
  # ("-dirty" when the tree has edits): an image says what it was built from.
  revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
  if edited; then revision="$revision-dirty"; fi
  for svc in $SERVICES; do
    step "building image $svc:$TAG ($ARCH)"
    run docker build -f docker/Dockerfile --target "$svc" ${platform[@]+"${platform[@]}"} \
      --build-arg TARGETARCH="$ARCH" --build-arg REVISION="$revision" -t "$svc:$TAG" .
  done
}

push_images() {
  local svc
  for svc in $SERVICES; do
    step "tagging and pushing $svc:$TAG"
    run docker tag "$svc:$TAG" "$(repo "$svc"):$TAG"
    run docker push "$(repo "$svc"):$TAG"
  done
}

# template_upload: sets UPLOAD to the options that send the template through
# S3 when it is too large to send inline (none otherwise), making the bucket
# first if it is missing.
UPLOAD=()
template_upload() {
  local size account region
  size=$(wc -c <"$TEMPLATE")
  [ "$size" -gt "$TEMPLATE_BODY_MAX" ] || return 0
  if [ -z "$BUCKET" ]; then
    if [ "$DRY_RUN" = 1 ]; then
      account='<account>' region=${REGION:-'<region>'}
    else
      account=$("${AWS[@]}" sts get-caller-identity --query Account --output text)
      region=${REGION:-$(aws configure get region || true)}
      [ -n "$region" ] || usage_error "no region for the template bucket's name: give --region or --s3-bucket"
    fi
    BUCKET="interstella-templates-$account-$region"
  fi
  step "the template ($size bytes, over $TEMPLATE_BODY_MAX) goes through s3://$BUCKET"
  if [ "$DRY_RUN" = 1 ] || ! "${AWS[@]}" s3api head-bucket --bucket "$BUCKET" >/dev/null 2>&1; then
    run "${AWS[@]}" s3 mb "s3://$BUCKET"
  fi
  UPLOAD=(--s3-bucket "$BUCKET")
}

roll_services() {
  template_upload
  step "rolling the services: stack $STACK with the new image tags"
  local params=() svc
  for svc in $SERVICES; do params+=("$(cap "$svc")ImageTag=$TAG"); done
  run "${AWS[@]}" cloudformation deploy --stack-name "$STACK" \
    --template-file "$TEMPLATE" ${UPLOAD[@]+"${UPLOAD[@]}"} --capabilities CAPABILITY_IAM \
    --no-fail-on-empty-changeset --parameter-overrides "${params[@]}" ${OVERRIDES[@]+"${OVERRIDES[@]}"}
}

wait_until_stable() {
  step "waiting for the ECS services to be stable"
  local service_names=() svc
  for svc in $SERVICES; do service_names+=("$(output "$(cap "$svc")ServiceName")"); done
  run "${AWS[@]}" ecs wait services-stable --cluster "$CLUSTER" --services "${service_names[@]}"
}

print_next_steps() {
  step "done"
  if [ "$SERVICES" = hq ]; then
    echo "HQ: $(output PortalUrl)"
    return
  fi
  # OrderUrl, not the ALB's name: with a certificate, port 80 answers every
  # request with a redirect, and a redirected POST places no order.
  local order_url
  order_url=$(output OrderUrl)
  echo "orders: $order_url"
  echo "try: curl -H \"Content-Type: application/json\" -X POST -d '{\"Message\":{\"bundle\":\"1\"}}' $order_url"
}

main() {
  parse_args "$@"
  check_architecture
  read_stack_outputs
  log_in_to_ecr
  if [ "$BUILD" = 1 ]; then build_images; fi
  push_images
  roll_services
  wait_until_stable
  print_next_steps
}

main "$@"
