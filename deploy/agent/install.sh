#!/bin/sh
# Installs the InferMesh edge agent on a Linux device and enrolls it with the mesh.
#
# Usage: install.sh --prefix DIR --nats URL --token TOKEN [options]
#   --prefix DIR                  install under DIR: DIR/lib/infermesh-agent, DIR/bin/infermesh-agent,
#                                 DIR/etc/infermesh/agent.json, state in DIR/var/lib/infermesh-agent
#   --nats URL                    the mesh's NATS server(s), comma-separated
#   --token TOKEN                 one-time enrollment token (infermesh tokens create); may be left out
#                                 when the prefix holds an enrolled identity already (upgrade)
#   --labels k=v,...              labels the agent reports (the token's labels take precedence)
#   --trusted-publisher-key KEY   publisher key whose signed models the agent syncs (repeatable)
#   --systemd-dir DIR             where the unit goes (default /etc/systemd/system)
#   --no-start                    do not enable and start the service
#   --enroll-later                do not enroll now: the token goes into the config and the agent
#                                 enrolls on its first start (devices without a network at install)
#   --bundle PATH                 the agent bundle (directory or .tar.gz); default: the directory
#                                 holding this script when it is a bundle, else the checkout's build
#   --enroll-timeout SECONDS      give up enrolling after this long (default 120)
#   --service-user NAME           user the service runs as (as root; default: a dedicated system user
#                                 `infermesh`, created when missing; other names must exist)
#
# Needs Node.js >= 20.19 (`node` on PATH, or NODE=/path/to/node). Exits non-zero, saying why, when
# anything fails, including a refused token (unknown, used or expired).
set -eu

PROG=install.sh
die() { echo "$PROG: $*" >&2; exit 1; }
usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; }

HERE=$(cd "$(dirname "$0")" && pwd)
PREFIX="" NATS="" TOKEN="" LABELS="" KEYS="" SYSTEMD_DIR=/etc/systemd/system
START=1 ENROLL_LATER=0 BUNDLE="" ENROLL_TIMEOUT=120 SERVICE_USER=""

NL='
'
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX=${2:?--prefix needs a directory}; shift 2 ;;
    --nats) NATS=${2:?--nats needs a URL}; shift 2 ;;
    --token) TOKEN=${2:?--token needs a token}; shift 2 ;;
    --labels) LABELS=${2:?--labels needs key=value pairs}; shift 2 ;;
    --trusted-publisher-key) KEYS="$KEYS${2:?--trusted-publisher-key needs a key}$NL"; shift 2 ;;
    --systemd-dir) SYSTEMD_DIR=${2:?--systemd-dir needs a directory}; shift 2 ;;
    --no-start) START=0; shift ;;
    --enroll-later) ENROLL_LATER=1; shift ;;
    --bundle) BUNDLE=${2:?--bundle needs a path}; shift 2 ;;
    --service-user) SERVICE_USER=${2:?--service-user needs a user name}; shift 2 ;;
    --enroll-timeout) ENROLL_TIMEOUT=${2:?--enroll-timeout needs seconds}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

[ -n "$PREFIX" ] || die "--prefix is required (see --help)"
[ -n "$NATS" ] || die "--nats is required (see --help)"
case "$ENROLL_TIMEOUT" in ''|*[!0-9]*|0) die "--enroll-timeout must be a whole number of seconds above 0" ;; esac
[ "$(uname -s)" = Linux ] || die "the installer supports Linux only (this is $(uname -s))"

# ---- Node.js -------------------------------------------------------------------------------
NODE=${NODE:-$(command -v node || true)}
[ -n "$NODE" ] && [ -x "$NODE" ] || die "Node.js >= 20.19 is required: install it (https://nodejs.org) or set NODE=/path/to/node"
"$NODE" -e '
  const [major, minor] = process.versions.node.split(".").map(Number);
  process.exit(major > 20 || (major === 20 && minor >= 19) ? 0 : 1);
' || die "Node.js >= 20.19 is required; $NODE is $("$NODE" --version)"

# ---- paths ---------------------------------------------------------------------------------
# Paths go into a shell wrapper, a sed script and a systemd unit: keep them to plain characters.
for path in "$PREFIX" "$SYSTEMD_DIR"; do
  case "$path" in
    *[!A-Za-z0-9._/+-]*) die "paths may hold only letters, digits and . _ / + - (got '$path')" ;;
  esac
done
mkdir -p "$PREFIX"
PREFIX=$(cd "$PREFIX" && pwd)
LIB_DIR="$PREFIX/lib/infermesh-agent"
BIN="$PREFIX/bin/infermesh-agent"
CONFIG_DIR="$PREFIX/etc/infermesh"
CONFIG="$CONFIG_DIR/agent.json"
STATE_DIR="$PREFIX/var/lib/infermesh-agent"
IDENTITY="$STATE_DIR/identity.json"
UNIT="$SYSTEMD_DIR/infermesh-agent.service"
if [ "$(id -u)" = 0 ]; then
  SERVICE_USER=${SERVICE_USER:-infermesh}
elif [ -n "$SERVICE_USER" ]; then
  die "--service-user needs root (without root the service runs as the installing user)"
fi

if [ -z "$TOKEN" ] && ! [ -f "$IDENTITY" ]; then
  die "--token is required: this prefix holds no enrolled identity ($IDENTITY)"
fi

# ---- bundle --------------------------------------------------------------------------------
if [ -z "$BUNDLE" ]; then
  if [ -f "$HERE/agent.mjs" ]; then BUNDLE=$HERE; else BUNDLE="$HERE/../../dist/agent-bundle/infermesh-agent"; fi
fi
[ -e "$BUNDLE" ] || die "no agent bundle at $BUNDLE: build one with deploy/agent/build-bundle.sh, or pass --bundle"
mkdir -p "$PREFIX/lib" "$PREFIX/bin"
STAGING="$PREFIX/lib/.infermesh-agent.new.$$"
trap 'rm -rf "$STAGING"' EXIT
rm -rf "$STAGING"
if [ -d "$BUNDLE" ]; then
  [ -f "$BUNDLE/agent.mjs" ] || die "$BUNDLE is not an agent bundle (no agent.mjs)"
  cp -R "$BUNDLE" "$STAGING"
else
  mkdir -p "$STAGING.x"
  tar -xzf "$BUNDLE" -C "$STAGING.x" || { rm -rf "$STAGING.x"; die "cannot extract $BUNDLE"; }
  [ -f "$STAGING.x/infermesh-agent/agent.mjs" ] || { rm -rf "$STAGING.x"; die "$BUNDLE is not an agent bundle"; }
  mv "$STAGING.x/infermesh-agent" "$STAGING"
  rm -rf "$STAGING.x"
fi
# Swap in the new version (an upgrade replaces the old one whole).
rm -rf "$LIB_DIR.old"
[ -d "$LIB_DIR" ] && mv "$LIB_DIR" "$LIB_DIR.old"
mv "$STAGING" "$LIB_DIR"
rm -rf "$LIB_DIR.old"

cat > "$BIN.tmp" <<SH
#!/bin/sh
# InferMesh edge agent (installed by install.sh): every option of \`infermesh agent\`.
exec "$NODE" "$LIB_DIR/agent.mjs" "\$@"
SH
chmod 0755 "$BIN.tmp"
mv "$BIN.tmp" "$BIN"
"$BIN" --help >/dev/null || die "the installed agent does not run ($BIN --help failed)"

# ---- service user and state ----------------------------------------------------------------
if [ -n "$SERVICE_USER" ] && ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
  [ "$SERVICE_USER" = infermesh ] || die "the service user $SERVICE_USER does not exist"
  NOLOGIN=$(command -v nologin || echo /bin/false)
  useradd --system --no-create-home --home-dir "$STATE_DIR" --shell "$NOLOGIN" "$SERVICE_USER" \
    || die "cannot create the service user $SERVICE_USER"
fi
SERVICE_GROUP=""
[ -n "$SERVICE_USER" ] && SERVICE_GROUP=$(id -gn "$SERVICE_USER")
mkdir -p "$STATE_DIR/models" "$CONFIG_DIR"
chmod 0700 "$STATE_DIR"

# ---- config (mode 0600; the token only with --enroll-later) ---------------------------------
CONFIG_TOKEN=""
[ "$ENROLL_LATER" = 1 ] && CONFIG_TOKEN=$TOKEN
(umask 077 && IM_NATS=$NATS IM_STATE=$STATE_DIR IM_IDENTITY=$IDENTITY IM_LABELS=$LABELS IM_KEYS=$KEYS \
  IM_TOKEN=$CONFIG_TOKEN "$NODE" -e '
  const env = process.env;
  const config = {
    nats: env.IM_NATS,
    modelsDir: `${env.IM_STATE}/models`,
    identityFile: env.IM_IDENTITY,
  };
  if (env.IM_LABELS) config.labels = env.IM_LABELS;
  const keys = (env.IM_KEYS ?? "").split("\n").filter((k) => k !== "");
  if (keys.length > 0) config.trustedPublisherKeys = keys;
  if (env.IM_TOKEN) config.enrollToken = env.IM_TOKEN;
  process.stdout.write(JSON.stringify(config, null, 2) + "\n");
' > "$CONFIG.tmp")
chmod 0600 "$CONFIG.tmp"
mv "$CONFIG.tmp" "$CONFIG"

# ---- enroll (a refused token fails the install) ----------------------------------------------
if [ "$ENROLL_LATER" = 0 ]; then
  # Not the URL itself: it may carry credentials.
  echo "$PROG: enrolling with the mesh ..."
  INFERMESH_ENROLL_TOKEN=$TOKEN "$BIN" --config "$CONFIG" --enroll-only \
    --enroll-timeout-ms "$((ENROLL_TIMEOUT * 1000))" --log-level warn \
    || die "enrollment failed (see the message above); nothing was started"
fi
if [ -n "$SERVICE_USER" ]; then
  chown -R "$SERVICE_USER:$SERVICE_GROUP" "$STATE_DIR"
  chown "$SERVICE_USER:$SERVICE_GROUP" "$CONFIG"
fi

# ---- systemd unit ----------------------------------------------------------------------------
TEMPLATE="$LIB_DIR/infermesh-agent.service"
[ -f "$TEMPLATE" ] || TEMPLATE="$HERE/infermesh-agent.service"
mkdir -p "$SYSTEMD_DIR"
if [ -n "$SERVICE_USER" ]; then USER_FILTER=cat; else USER_FILTER="sed -e /^User=/d -e /^Group=/d"; fi
sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@CONFIG@|$CONFIG|g" -e "s|@STATE_DIR@|$STATE_DIR|g" \
  -e "s|^User=@USER@|User=$SERVICE_USER|" -e "s|^Group=@USER@|Group=$SERVICE_GROUP|" "$TEMPLATE" | $USER_FILTER > "$UNIT.tmp"
chmod 0644 "$UNIT.tmp"
mv "$UNIT.tmp" "$UNIT"

if [ "$START" = 1 ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl daemon-reload
  systemctl enable infermesh-agent.service
  # restart, not start: on an upgrade the running agent must pick up the new bundle.
  systemctl restart infermesh-agent.service
  echo "$PROG: infermesh-agent.service enabled and (re)started"
else
  echo "$PROG: unit written to $UNIT (not started)"
fi
echo "$PROG: installed in $PREFIX (config $CONFIG, state $STATE_DIR)"
