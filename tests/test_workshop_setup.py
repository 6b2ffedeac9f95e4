"""The set-up scripts, without the network and without touching .venv.

* ``tools/install_sparse.sh`` (prebuilt wheels only: PyG's index, else pip's cache, else
  one skip line; ``--build`` then compiles) runs with the real pip against a throw-away
  environment. torch-scatter and
  torch-sparse are stand-ins with the pinned names and versions: "prebuilt" wheels served
  by a PyG-style index page on 127.0.0.1, and source archives whose "compilation" (a tiny
  in-tree build backend) is logged, so a test sees whether anything was compiled.
* ``workshop.sh`` and ``.ci/run`` run in a temporary copy of the repository with a fake
  ``.venv/bin/python`` that records pip's command lines instead of installing anything
  (and whose "compile" of torch-sparse is a file it creates).
* ``postBuild``'s last steps (Binder: the workshop's JupyterLab settings) run against a
  throw-away environment.
"""
from __future__ import annotations

import functools
import http.server
import io
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INSTALL_SPARSE = ROOT / "tools" / "install_sparse.sh"

pytestmark = pytest.mark.skipif(os.name == "nt" or shutil.which("bash") is None,
                                reason="needs bash")


def pins() -> dict[str, str]:
    """{'torch-scatter': '2.1.2', 'torch-sparse': '0.6.18'} from requirements-sparse.txt."""
    text = (ROOT / "requirements-sparse.txt").read_text()
    return dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", text, re.M))


def module(name: str) -> str:
    return name.replace("-", "_")


# ---------------------------------------------------------------- stand-in packages

def dist_info(name: str, version: str) -> dict[str, str]:
    di = f"{module(name)}-{version}.dist-info"
    return {
        f"{di}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{di}/WHEEL": ("Wheel-Version: 1.0\nGenerator: test\n"
                        "Root-Is-Purelib: true\nTag: py3-none-any\n"),
    }


def write_wheel(folder: Path, name: str, version: str, body: str) -> Path:
    """A minimal pure-Python wheel holding ``<module>/__init__.py`` = body."""
    files = {f"{module(name)}/__init__.py": body, **dist_info(name, version)}
    path = folder / f"{module(name)}-{version}-py3-none-any.whl"
    record = f"{module(name)}-{version}.dist-info/RECORD"
    with zipfile.ZipFile(path, "w") as zf:
        for arcname, text in files.items():
            zf.writestr(arcname, text)
        zf.writestr(record, "".join(f"{a},,\n" for a in [*files, record]))
    return path


# An in-tree PEP 517 backend (no setuptools needed): "compiling" appends the package's name
# to $FAKE_BUILD_LOG; with FAKE_BUILD_BROKEN=1 the built module fails to import, like an
# extension compiled against another torch.
BACKEND = '''
import os, zipfile
NAME, VERSION = {name!r}, {version!r}
MOD = NAME.replace("-", "_")
DI = f"{{MOD}}-{{VERSION}}.dist-info"
META = {{"METADATA": f"Metadata-Version: 2.1\\nName: {{NAME}}\\nVersion: {{VERSION}}\\n",
        "WHEEL": ("Wheel-Version: 1.0\\nGenerator: test\\n"
                  "Root-Is-Purelib: true\\nTag: py3-none-any\\n")}}

def get_requires_for_build_wheel(config_settings=None):
    return []

def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    os.makedirs(os.path.join(metadata_directory, DI))
    for fname, text in META.items():
        with open(os.path.join(metadata_directory, DI, fname), "w") as fh:
            fh.write(text)
    return DI

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    with open(os.environ["FAKE_BUILD_LOG"], "a") as fh:
        fh.write(NAME + "\\n")
    body = "BUILT = 'source'\\n"
    if os.environ.get("FAKE_BUILD_BROKEN") == "1":
        body = "raise ImportError('compiled against another torch')\\n"
    whl = f"{{MOD}}-{{VERSION}}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, whl), "w") as zf:
        zf.writestr(f"{{MOD}}/__init__.py", body)
        for fname, text in META.items():
            zf.writestr(f"{{DI}}/{{fname}}", text)
        zf.writestr(f"{{DI}}/RECORD", "")
    return whl
'''


def write_sdist(folder: Path, name: str, version: str) -> Path:
    top = f"{module(name)}-{version}"
    files = {
        "pyproject.toml": ('[build-system]\nrequires = []\n'
                           'build-backend = "backend"\nbackend-path = ["."]\n'),
        "backend.py": BACKEND.format(name=name, version=version),
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
    }
    path = folder / f"{top}.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for fname, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{fname}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


# ---------------------------------------------------------------- environment, index

class Env:
    """A throw-away environment without packages; pip is borrowed from the running
    interpreter's environment through a .pth file (fast: no ensurepip)."""

    def __init__(self, base: Path):
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(base / "venv")],
                       check=True)
        self.python = base / "venv" / "bin" / "python"
        self.purelib = Path(subprocess.run(
            [str(self.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True).stdout.strip())
        import pip
        borrowed = base / "borrowed"
        borrowed.mkdir()
        (borrowed / "pip").symlink_to(Path(pip.__file__).parent)
        (self.purelib / "borrowed_pip.pth").write_text(f"{borrowed}\n")

    def clear(self) -> None:
        """Remove both packages, as in a fresh environment (faster than pip uninstall)."""
        for name in pins():
            for path in self.purelib.glob(f"{module(name)}*"):
                shutil.rmtree(path)

    def run(self, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
        """install_sparse.sh ARGS PYTHON, in a clean environment plus ``env``."""
        clean = {k: v for k, v in os.environ.items()
                 if not k.startswith(("PIP_", "LIGHTGCN_", "PYTHON"))}
        return subprocess.run(["bash", str(INSTALL_SPARSE), *args, str(self.python)],
                              env={**clean, **env}, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Env:
    return Env(tmp_path_factory.mktemp("env"))


@pytest.fixture
def stage(tmp_path, venv):
    """Source archives of both packages in a find-links folder, an empty pip cache and a
    build log; ``stage.run(**env)`` runs install_sparse.sh into the throw-away environment."""
    sdists = tmp_path / "sdists"
    sdists.mkdir()
    for name, version in pins().items():
        write_sdist(sdists, name, version)
    build_log = tmp_path / "builds.log"
    build_log.touch()
    base_env = {
        "PIP_CONFIG_FILE": os.devnull,       # ignore the machine's pip configuration
        "PIP_NO_INDEX": "1",                 # no package index: nothing leaves this machine
        "PIP_FIND_LINKS": str(sdists),       # where "PyPI's" source archives are
        "PIP_CACHE_DIR": str(tmp_path / "pip-cache"),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "FAKE_BUILD_LOG": str(build_log),
        "HOME": str(tmp_path / "home"),
    }

    class Stage:
        cache = tmp_path / "pip-cache"
        uninstall = staticmethod(venv.clear)

        @staticmethod
        def run(*args: str, **env: str) -> subprocess.CompletedProcess:
            return venv.run(*args, env={**base_env, **env})

        @staticmethod
        def builds() -> list[str]:
            return build_log.read_text().split()

        @staticmethod
        def installed() -> dict[str, str]:
            """{module: its BUILT marker, or 'broken'} for what imports in the environment."""
            code = ("import importlib, json\nout = {}\n"
                    "for m in ('torch_scatter', 'torch_sparse'):\n"
                    "    try: out[m] = importlib.import_module(m).BUILT\n"
                    "    except ModuleNotFoundError: pass\n"
                    "    except ImportError: out[m] = 'broken'\nprint(json.dumps(out))")
            done = subprocess.run([str(venv.python), "-c", code],
                                  capture_output=True, text=True, check=True)
            import json
            return json.loads(done.stdout)

    venv.clear()
    yield Stage
    venv.clear()


@pytest.fixture
def pyg_index(tmp_path):
    """A PyG-style wheel index on 127.0.0.1: a page torch-2.13.0+cpu.html whose links point
    at cpu/<name>-<version>+pt213cpu-....whl (local version labels, %2B-escaped, as PyG's).
    ``pyg_index.publish(body)`` writes the wheels; ``pyg_index.requests`` lists the paths
    asked for."""
    root = tmp_path / "pyg"
    (root / "whl" / "cpu").mkdir(parents=True)
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requests.append(self.path)

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()

    class Index:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/whl/torch-2.13.0+cpu.html"

        @staticmethod
        def publish(body: str) -> None:
            links = []
            for name, version in pins().items():
                whl = write_wheel(root / "whl" / "cpu", name, f"{version}+pt213cpu", body)
                href = f"cpu/{whl.name}".replace("+", "%2B")
                links.append(f'<a href="{href}">cpu/{whl.name}</a><br>')
            (root / "whl" / "torch-2.13.0+cpu.html").write_text(
                "<html><body>\n" + "\n".join(links) + "\n</body></html>\n")

    Index.requests = requests
    yield Index
    httpd.shutdown()
    httpd.server_close()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/whl/torch-2.13.0+cpu.html"


# ---------------------------------------------------------------- install_sparse.sh

SKIP_LINE = "torch-sparse skipped: no prebuilt torch-scatter/torch-sparse wheel"


def test_fresh_setup_without_index_or_cache_compiles_nothing_and_names_the_command(stage):
    # The default (set-up's) route with PyG's index unreachable and an empty pip cache:
    # the source archives are on the "index", yet nothing is compiled or installed.
    done = stage.run(LIGHTGCN_PYG_INDEX=closed_port_url(),
                     LIGHTGCN_SPARSE_CMD="./workshop.sh sparse")
    assert done.returncode == 4, done.stdout + done.stderr
    assert re.search(r"from LIGHTGCN_PYG_INDEX \(http://127\.0\.0\.1:\d+/\S+\): unreachable\n",
                     done.stdout)
    assert "ERROR" not in done.stdout + done.stderr                  # nothing reads as a failure
    assert "has no compiled torch-scatter" in done.stdout            # pip's cache was looked at
    skip = [line for line in done.stderr.splitlines() if SKIP_LINE in line]
    assert len(skip) == 1, done.stderr                               # one line says it all:
    assert "notebook 03's SparseTensor cells" in skip[0]             # what skips,
    assert "Add them with: ./workshop.sh sparse" in skip[0]          # the command that adds it
    assert stage.builds() == []
    assert stage.installed() == {}
    assert not list(stage.cache.rglob("*.whl"))
    # Run directly (conda, Binder), the line names the script's own build command.
    done = stage.run(LIGHTGCN_PYG_WHEELS="0")
    assert done.returncode == 4
    assert "Add them with: bash tools/install_sparse.sh --build " in done.stderr
    assert stage.builds() == []


def test_build_on_request_compiles_once_then_fresh_setups_take_pips_cache(stage, tmp_path):
    status = tmp_path / "status"
    done = stage.run("--build", LIGHTGCN_PYG_INDEX=closed_port_url(),
                     LIGHTGCN_SPARSE_STATUS=str(status))
    assert done.returncode == 0, done.stdout + done.stderr
    assert ": unreachable" in done.stdout
    assert "Compiling torch-scatter and torch-sparse" in done.stdout
    assert re.search(r"torch-sparse OK \(compiled in \d+ s; pip cached the wheels\)", done.stdout)
    assert sorted(stage.builds()) == sorted(pins())                   # both compiled, once
    assert stage.installed() == {"torch_scatter": "source", "torch_sparse": "source"}
    assert status.read_text().strip() == "compiled"

    # A fresh environment (another clone, CI): the default route, which never compiles, takes
    # the compiled wheels from pip's cache -- here with an empty local folder as the index.
    stage.uninstall()
    empty = tmp_path / "empty-index"
    empty.mkdir()
    done = stage.run(LIGHTGCN_PYG_INDEX=str(empty), LIGHTGCN_SPARSE_STATUS=str(status))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"LIGHTGCN_PYG_INDEX ({empty}): no wheel there for " in done.stdout
    assert "torch-sparse OK (taken from pip's cache, nothing compiled)" in done.stdout
    assert sorted(stage.builds()) == sorted(pins())                   # still one build each
    assert stage.installed() == {"torch_scatter": "source", "torch_sparse": "source"}
    assert status.read_text().strip() == "cache"

    # Both installed: nothing to do, also for --build; the status file keeps how they came
    # (workshop.sh sparse: the set-up took them from the cache, then the build found them).
    done = stage.run("--build", LIGHTGCN_PYG_WHEELS="0", LIGHTGCN_SPARSE_STATUS=str(status))
    assert done.returncode == 0 and "torch-sparse OK (already installed)" in done.stdout
    assert status.read_text().strip() == "cache" and len(stage.builds()) == 2
    status.write_text("")
    done = stage.run("--build", LIGHTGCN_PYG_WHEELS="0", LIGHTGCN_SPARSE_STATUS=str(status))
    assert status.read_text().strip() == "installed"


def test_prebuilt_wheels_are_used_without_compiling(stage, pyg_index):
    pyg_index.publish("BUILT = 'prebuilt'\n")
    done = stage.run(LIGHTGCN_PYG_INDEX=pyg_index.url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "torch-sparse OK (prebuilt wheels, nothing compiled)" in done.stdout
    assert "Successfully installed" in done.stdout
    assert stage.builds() == []
    assert stage.installed() == {"torch_scatter": "prebuilt", "torch_sparse": "prebuilt"}
    assert "/whl/torch-2.13.0+cpu.html" in pyg_index.requests
    assert sum(p.endswith(".whl") for p in pyg_index.requests) == 2

    # Set-up again with both installed: nothing to do, nothing downloaded or compiled.
    n = len(pyg_index.requests)
    done = stage.run(LIGHTGCN_PYG_INDEX=pyg_index.url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "torch-sparse OK (already installed)" in done.stdout
    assert stage.builds() == [] and sum(p.endswith(".whl") for p in pyg_index.requests[n:]) == 0


def test_opt_out_never_asks_the_index(stage, pyg_index):
    pyg_index.publish("BUILT = 'prebuilt'\n")
    done = stage.run(LIGHTGCN_PYG_INDEX=pyg_index.url, LIGHTGCN_PYG_WHEELS="0")
    assert done.returncode == 4, done.stdout + done.stderr
    assert "LIGHTGCN_PYG_WHEELS=0" in done.stdout and SKIP_LINE in done.stderr
    done = stage.run("--build", LIGHTGCN_PYG_INDEX=pyg_index.url, LIGHTGCN_PYG_WHEELS="0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert pyg_index.requests == []
    assert stage.installed() == {"torch_scatter": "source", "torch_sparse": "source"}


def test_prebuilt_wheels_that_do_not_import_are_removed_compiled_on_request(stage, pyg_index):
    pyg_index.publish("raise ImportError('undefined symbol: built for another torch')\n")
    done = stage.run(LIGHTGCN_PYG_INDEX=pyg_index.url)
    assert done.returncode == 4, done.stdout + done.stderr
    assert "installed, but they do not import" in done.stdout and SKIP_LINE in done.stderr
    assert stage.builds() == [] and stage.installed() == {}

    done = stage.run("--build", LIGHTGCN_PYG_INDEX=pyg_index.url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "installed, but they do not import" in done.stdout
    assert sorted(stage.builds()) == sorted(pins())
    assert stage.installed() == {"torch_scatter": "source", "torch_sparse": "source"}


def test_failed_build_is_readable_and_a_stale_cached_wheel_is_rebuilt(stage, tmp_path):
    # The compiled extension does not import (as when compiled for another torch):
    # exit status 3 and a warning that says what still works and how to retry.
    status = tmp_path / "status"
    done = stage.run("--build", LIGHTGCN_PYG_WHEELS="0", FAKE_BUILD_BROKEN="1",
                     LIGHTGCN_SPARSE_CMD="./workshop.sh sparse", LIGHTGCN_SPARSE_STATUS=str(status))
    assert done.returncode == 3, done.stdout + done.stderr
    assert "could not be compiled or imported" in done.stderr
    assert "notebook 03's SparseTensor cells" in done.stderr
    assert "To retry: ./workshop.sh sparse" in done.stderr
    assert stage.installed() == {"torch_scatter": "broken", "torch_sparse": "broken"}
    assert status.read_text().strip() == "failed"

    # pip's cache now holds the bad wheels: the default route removes the bad copy, tries
    # the cached wheels, finds that they do not import, removes them -- and compiles nothing.
    n = len(stage.builds())
    done = stage.run(LIGHTGCN_PYG_WHEELS="0")
    assert done.returncode == 4, done.stdout + done.stderr
    assert "removed a copy that does not import" in done.stdout
    assert "Found compiled wheels in pip's cache" in done.stdout
    assert "do not install or import here" in done.stdout
    assert stage.builds()[n:] == [] and stage.installed() == {}

    # Now the build works: --build drops the stale wheels from pip's cache, compiles anew ...
    done = stage.run("--build", LIGHTGCN_PYG_WHEELS="0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "do not install or import here" in done.stdout
    assert sorted(stage.builds()[n:]) == sorted(pins())
    assert stage.installed() == {"torch_scatter": "source", "torch_sparse": "source"}

    # ... and the good wheels replaced them in pip's cache: a fresh environment compiles nothing.
    stage.uninstall()
    n = len(stage.builds())
    done = stage.run(LIGHTGCN_PYG_WHEELS="0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "taken from pip's cache" in done.stdout
    assert stage.builds()[n:] == []
    assert stage.installed() == {"torch_scatter": "source", "torch_sparse": "source"}


def test_skip_installs_nothing(venv):
    venv.clear()
    done = venv.run(env={"LIGHTGCN_SKIP_SPARSE": "1", "PIP_NO_INDEX": "1",
                         "PIP_CONFIG_FILE": os.devnull})
    assert done.returncode == 0
    assert "LIGHTGCN_SKIP_SPARSE is set" in done.stderr
    assert not list(venv.purelib.glob("torch_s*"))


def test_latest_builds_go_to_their_own_cache(stage, tmp_path):
    latest_cache = tmp_path / "latest-cache"
    done = stage.run("--build", LIGHTGCN_LATEST="1", LIGHTGCN_LATEST_PIP_CACHE=str(latest_cache))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"cached apart, in {latest_cache}" in done.stdout
    # no torch in the throw-away environment: no index to derive, pip's usual route instead
    assert "No PyG wheel index for this torch: torch does not import" in done.stdout
    assert list(latest_cache.rglob("*.whl")) and not list(stage.cache.rglob("*.whl"))


@pytest.mark.parametrize("version, cuda, hip, expected", [
    ("2.13.0+cpu", None, None, "https://data.pyg.org/whl/torch-2.13.0+cpu.html"),
    ("2.13.1+cpu", None, None, "https://data.pyg.org/whl/torch-2.13.0+cpu.html"),
    ("2.5.1+cu124", "12.4", None, "https://data.pyg.org/whl/torch-2.5.0+cu124.html"),
    ("2.6.0", "12.6", None, "https://data.pyg.org/whl/torch-2.6.0+cu126.html"),
    ("2.10.0", "13.0", None, "https://data.pyg.org/whl/torch-2.10.0+cu130.html"),
    ("2.4.0+rocm6.1", None, "6.1", "ROCm build"),
])
def test_index_url_follows_torch_and_cuda(venv, tmp_path, version, cuda, hip, expected):
    fake = tmp_path / "fake-torch" / "torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        f"import types\n__version__ = {version!r}\n"
        f"version = types.SimpleNamespace(cuda={cuda!r}, hip={hip!r})\n")
    done = venv.run("--print-index-url", env={"PYTHONPATH": str(fake.parent)})
    if expected.startswith("https://"):
        assert (done.returncode, done.stdout.strip()) == (0, expected), done.stderr
    else:
        assert done.returncode == 1 and expected in done.stderr


def test_without_torch_there_is_no_index_url(venv):
    done = venv.run("--print-index-url", env={})
    assert done.returncode == 1 and "torch does not import" in done.stderr


def test_usage_errors():
    for args in ([], ["--print-index-url"], ["--build"], ["--bogus", "python3"]):
        done = subprocess.run(["bash", str(INSTALL_SPARSE), *args], capture_output=True, text=True)
        assert done.returncode == 2 and "install_sparse.sh PYTHON" in done.stderr


# ---------------------------------------------------------------- workshop.sh, .ci/run

FAKE_PYTHON = """#!/usr/bin/env bash
# Records pip's command lines instead of installing; everything else runs in real Python.
# torch-scatter/torch-sparse: no prebuilt wheel anywhere (pip --only-binary fails), nothing
# in pip's cache, and a "compile" (pip --no-build-isolation) makes them importable
# ($FAKE_SPARSE appears), logging its priority and MAX_JOBS to $FAKE_BUILD_INFO.
if [ "${1:-}" = "-m" ] && [ "${2:-}" = "pip" ]; then
  shift 2
  echo "$*" >> "$FAKE_PIP_LOG"
  case "$*" in
    *--only-binary*) exit 1 ;;
    "install --progress-bar off --no-build-isolation -r requirements-sparse.txt")
      echo "nice=$(nice) MAX_JOBS=${MAX_JOBS:-}" >> "$FAKE_BUILD_INFO"
      sleep "${FAKE_BUILD_SECONDS:-0}"
      touch "$FAKE_SPARSE" ;;
  esac
  exit 0
fi
case "$*" in
  *"import lightgcn_helpers"*) exit 0 ;;
  *torch_scatter*|*torch_sparse*) [ -f "$FAKE_SPARSE" ]; exit ;;
esac
exec REAL_PYTHON "$@"
"""


@pytest.fixture
def repo(tmp_path):
    """A copy of the repository's set-up files with a fake .venv; ``repo.run(*args, **env)``."""
    dest = tmp_path / "repo"
    for rel in ["workshop.sh", "requirements.txt", "requirements-sparse.txt", "pyproject.toml",
                "tools/install_sparse.sh", ".ci/run"]:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)
    fake = dest / ".venv" / "bin" / "python"
    fake.parent.mkdir(parents=True)
    fake.write_text(FAKE_PYTHON.replace("REAL_PYTHON", sys.executable))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "pip.log"
    log.touch()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("LIGHTGCN_", "PIP_"))}
    base_env.update({"FAKE_PIP_LOG": str(log), "LIGHTGCN_SKIP_SPARSE": "1",
                     "FAKE_SPARSE": str(tmp_path / "sparse-installed"),
                     "FAKE_BUILD_INFO": str(tmp_path / "build-info")})

    class Repo:
        path = dest

        @staticmethod
        def run(*args: str, script: str = "workshop.sh", **env: str) -> subprocess.CompletedProcess:
            return subprocess.run(["bash", str(dest / script), *args], env={**base_env, **env},
                                  capture_output=True, text=True, timeout=120)

        @staticmethod
        def pip_calls() -> list[str]:
            return log.read_text().splitlines()

    return Repo


def test_workshop_pinned_setup_then_up_to_date(repo):
    done = repo.run("setup")
    assert done.returncode == 0, done.stdout + done.stderr
    calls = repo.pip_calls()
    torch_pin = re.search(r"^torch==\S+", (ROOT / "requirements.txt").read_text(), re.M).group(0)
    assert calls[1] == f"install --progress-bar off {torch_pin}"
    assert calls[2] == "install --progress-bar off -r requirements.txt"
    assert not any("--upgrade torch" in c for c in calls)
    assert "LIGHTGCN_SKIP_SPARSE is set" in done.stderr            # tools/install_sparse.sh ran

    done = repo.run("setup")
    assert "Environment .venv is up to date" in done.stdout
    assert len(repo.pip_calls()) == len(calls)


def test_workshop_latest_installs_the_newest_three_and_keeps_every_other_pin(repo):
    assert repo.run("setup").returncode == 0
    n = len(repo.pip_calls())

    done = repo.run("setup", LIGHTGCN_LATEST="1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "newest torch, torch-geometric and pandas" in done.stdout
    assert "newest releases: torch " in done.stdout
    calls = repo.pip_calls()[n:]
    assert "install --progress-bar off --upgrade torch" in calls
    rest = repo.path / ".venv" / "requirements-latest.txt"
    assert f"install --progress-bar off -r {rest}" in calls
    assert (calls.index("install --progress-bar off --upgrade torch")
            < calls.index(f"install --progress-bar off -r {rest}"))
    assert "install --progress-bar off --upgrade torch torch-geometric pandas" in calls
    assert not any(re.search(r"\b(torch|pandas)==|-r requirements\.txt", c) for c in calls)
    pinned = set(re.findall(r"^([A-Za-z0-9_.-]+)==", (ROOT / "requirements.txt").read_text(), re.M))
    kept = set(re.findall(r"^([A-Za-z0-9_.-]+)==", rest.read_text(), re.M))
    assert kept == pinned - {"torch", "torch-geometric", "pandas"}
    assert {"numpy", "pooch", "requests", "nbval"} <= kept

    # New releases appear without any file changing: the latest mode always installs ...
    n = len(repo.pip_calls())
    done = repo.run("setup", LIGHTGCN_LATEST="1")
    assert "up to date" not in done.stdout and len(repo.pip_calls()) > n
    # ... and the next pinned set-up puts the pins back.
    n = len(repo.pip_calls())
    done = repo.run("setup")
    assert "up to date" not in done.stdout
    assert "install --progress-bar off -r requirements.txt" in repo.pip_calls()[n:]


def test_ci_run_arguments_and_prefill(repo, tmp_path):
    # A stand-in workshop.sh that shows how .ci/run called it.
    stub = repo.path / "workshop.sh"
    stub.write_text('#!/usr/bin/env bash\necho "workshop.sh $* LATEST=${LIGHTGCN_LATEST:-unset}"\n'
                    'if [ "$1" = sparse ]; then\n'
                    '  echo "${FAKE_HOW:-compiled}" > "$LIGHTGCN_SPARSE_STATUS"\n'
                    '  exit "${FAKE_RC:-0}"\n'
                    'fi\n')
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    shared = tmp_path / "shared" / "datasets" / "movielens"
    shared.mkdir(parents=True)
    (shared / "ml-latest-small.zip").write_bytes(b"zip")

    done = repo.run(script=".ci/run")
    assert done.returncode == 0, done.stdout + done.stderr
    # the on-request build first, and CI says how the extensions came
    out = done.stdout
    sparse, test = (out.index(f"workshop.sh {c} LATEST=unset") for c in ("sparse", "test"))
    assert sparse < test
    assert "CI: torch-scatter/torch-sparse: compiled in this run" in out
    done = repo.run(script=".ci/run", FAKE_HOW="cache")
    assert "CI: torch-scatter/torch-sparse: taken from pip's cache, nothing compiled" in done.stdout
    # pinned versions: a failed build fails CI before the tests; newest releases: tests go on
    done = repo.run(script=".ci/run", FAKE_HOW="failed", FAKE_RC="3")
    assert done.returncode == 3 and "workshop.sh test" not in done.stdout
    assert "NOT installed (./workshop.sh sparse: exit code 3)" in done.stdout
    done = repo.run("--latest", script=".ci/run", FAKE_HOW="failed", FAKE_RC="3")
    assert done.returncode == 0 and "workshop.sh test LATEST=1" in done.stdout
    assert "testing without torch-sparse" in done.stdout
    assert (repo.path / "data" / "ml-latest-small.zip").read_bytes() == b"zip"

    done = repo.run("--latest", script=".ci/run")
    assert done.returncode == 0 and "workshop.sh test LATEST=1" in done.stdout
    assert "testing the newest torch, torch-geometric and pandas" in done.stdout
    done = repo.run(script=".ci/run", LIGHTGCN_LATEST="1")
    assert "workshop.sh test LATEST=1" in done.stdout

    done = repo.run("--bogus", script=".ci/run")
    assert done.returncode == 2 and "usage: .ci/run [--latest]" in done.stderr
    done = repo.run("--help", script=".ci/run")
    assert (done.returncode == 0 and "--latest" in done.stdout
            and "workshop.sh test" not in done.stdout)


def test_workshop_fresh_setup_compiles_nothing_and_says_how_to_add_torch_sparse(repo):
    done = repo.run("setup", LIGHTGCN_SKIP_SPARSE="0", LIGHTGCN_PYG_INDEX=closed_port_url())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Set-up finished in" in done.stdout
    calls = repo.pip_calls()
    assert any("--only-binary :all:" in c and "requirements-sparse.txt" in c for c in calls)
    compiles = [c for c in calls if "--no-build-isolation" in c and "requirements-sparse" in c]
    assert compiles == []                                               # nothing compiled
    skip = [line for line in done.stderr.splitlines() if "torch-sparse skipped" in line]
    assert len(skip) == 1 and "notebook 03's SparseTensor cells" in skip[0], done.stderr
    assert skip[0].rstrip().endswith(
        "Add them with: ./workshop.sh sparse (compiles, about 12 min on 2 idle cores)")

    # Later set-ups are up to date and remind in one line (nothing is installed or imported).
    n = len(repo.pip_calls())
    done = repo.run("setup", LIGHTGCN_SKIP_SPARSE="0")
    assert "Environment .venv is up to date" in done.stdout
    assert "torch-sparse is not installed" in done.stdout
    assert "add it with: ./workshop.sh sparse" in done.stdout
    assert len(repo.pip_calls()) == n


def test_workshop_sparse_compiles_on_request(repo, tmp_path):
    env = {"LIGHTGCN_SKIP_SPARSE": "0", "LIGHTGCN_PYG_INDEX": closed_port_url()}
    assert repo.run("setup", **env).returncode == 0
    n = len(repo.pip_calls())
    done = repo.run("sparse", **env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Environment .venv is up to date" in done.stdout          # set-up first, then the build
    assert "Compiling torch-scatter and torch-sparse" in done.stdout
    assert "torch-sparse OK (compiled in" in done.stdout
    calls = repo.pip_calls()[n:]
    assert "install --progress-bar off --no-build-isolation -r requirements-sparse.txt" in calls
    assert (tmp_path / "build-info").read_text().split() == ["nice=0", "MAX_JOBS=2"]
    # now installed: no reminder, and asking again does nothing
    done = repo.run("sparse", **env)
    assert "torch-sparse is not installed" not in done.stdout
    assert "torch-sparse OK (already installed)" in done.stdout
    assert repo.run("sparse", **env, MAX_JOBS="5").returncode == 0


def test_workshop_sparse_in_the_background_runs_at_lowest_priority_one_job(repo, tmp_path):
    env = {"LIGHTGCN_SKIP_SPARSE": "0", "LIGHTGCN_PYG_INDEX": closed_port_url(),
           "FAKE_BUILD_SECONDS": "3"}
    done = repo.run("sparse", "--background", **env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "in the background" in done.stdout and "tail -f" in done.stdout
    pid = int((repo.path / ".venv" / "sparse-build.pid").read_text())
    log = repo.path / ".venv" / "sparse-build.log"
    for _ in range(300):                  # nohup, then nice, exec one another in this process
        if os.getpriority(os.PRIO_PROCESS, pid) == 19:
            break
        threading.Event().wait(0.02)
    assert os.getpriority(os.PRIO_PROCESS, pid) == 19                # the lowest priority
    # a second request while it runs starts nothing
    again = repo.run("sparse", "--background", **env)
    assert f"already running (PID {pid})" in again.stdout
    # At nice 19 it only gets the CPU that nothing else wants: on a busy machine that can
    # be very little. Raise its priority (its later children inherit that) and wait.
    os.setpriority(os.PRIO_PROCESS, pid, 0)
    for _ in range(1200):                                            # 120 s at most
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        if "torch-sparse OK" in log.read_text():
            break
        threading.Event().wait(0.1)
    else:
        os.kill(pid, 15)
        pytest.fail("the background build did not finish")
    threading.Event().wait(0.5)
    assert "torch-sparse OK (compiled in" in log.read_text(), log.read_text()
    assert (tmp_path / "build-info").read_text().split()[1] == "MAX_JOBS=1"   # one compile job


def test_binder_postbuild_installs_the_workshop_lab_settings(tmp_path):
    """postBuild's steps after the package install, run against a throw-away environment:
    tools/lab-overrides.json lands where ``./workshop.sh lab`` puts it for .venv."""
    lines = (ROOT / "postBuild").read_text().splitlines()
    steps = lines[lines.index("python -m pip install --no-deps --no-build-isolation -e .") + 1:]
    env_dir = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    path = f"{env_dir / 'bin'}{os.pathsep}{os.environ['PATH']}"
    subprocess.run(["bash", "-c", "set -euo pipefail\n" + "\n".join(steps)], cwd=ROOT,
                   env={**os.environ, "PATH": path}, check=True)
    installed = env_dir / "share" / "jupyter" / "lab" / "settings" / "overrides.d"
    assert [p.name for p in installed.iterdir()] == ["lightgcn-workshop.json"]
    assert ((installed / "lightgcn-workshop.json").read_bytes()
            == (ROOT / "tools" / "lab-overrides.json").read_bytes())
    workshop = (ROOT / "workshop.sh").read_text()
    assert ('local dir="$VENV/share/jupyter/lab/settings/overrides.d"' in workshop
            and '"$dir/lightgcn-workshop.json"' in workshop)
