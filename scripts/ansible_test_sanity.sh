#!/usr/bin/env bash
# Run `ansible-test sanity` on the collection exactly as it ships: build the artifact with
# `ansible-galaxy collection build` (galaxy.yml build_ignore leaves out the twin, the integration
# tests and the AWX project files), install it into .build/, and test it there.
#
# ansible-test bootstraps pip into its test venvs from a get-pip script on a host this machine cannot
# reach. The stand-in below (see build-environment.md) runs ensurepip in a child process, so the
# machine's pip configuration (CA bundle, indexes) stays in force, then pip-installs what was asked.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-$here/.venv}
build=$here/.build
export PATH="$venv/bin:$PATH"

pip_version=$("$venv/bin/python" - <<'PY'
from ansible_test._internal.python_requirements import get_venv_packages
from ansible_test._internal.host_configs import NativePythonConfig
print(get_venv_packages(NativePythonConfig(version="3.11"))["pip"])
PY
)
cache="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
mkdir -p "$(dirname "$cache")"
cat > "$cache" <<'PY'
# Stand-in for get-pip.py (no route to ansible-test's file host): ensurepip in a child process,
# then pip install what ansible-test asked for.
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
if args:
    subprocess.check_call([sys.executable, "-m", "pip", "install"] + args)
PY

rm -rf "$build"
mkdir -p "$build/dist"
(cd "$here" && ansible-galaxy collection build --force --output-path "$build/dist" >/dev/null)
ansible-galaxy collection install --force --no-deps -p "$build" "$build"/dist/odp-model_engine-*.tar.gz >/dev/null
# Collections this one imports from (kubernetes.core's client factory) must sit beside it.
site=$("$venv/bin/python" -c 'import ansible_collections, os; print(os.path.dirname(ansible_collections.__file__))' 2>/dev/null \
  || "$venv/bin/python" -c 'import ansible_collections; print(list(ansible_collections.__path__)[0])')
mkdir -p "$build/ansible_collections/kubernetes"
cp -r "$site/kubernetes/core" "$build/ansible_collections/kubernetes/core"
cd "$build/ansible_collections/odp/model_engine"
# ansible-test wants a git work tree to list the collection's files.
git init -q . && git add -A >/dev/null && git -c user.email=ci@localhost -c user.name=ci commit -qm artifact
ansible-test sanity --python 3.11 --color no "$@"
