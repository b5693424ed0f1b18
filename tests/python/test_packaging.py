"""`pip install .` builds the C core and installs the package and the
`manta` command: installed into a fresh virtual environment, the package
runs a task and the command starts, shows and stops a cluster, from outside
the checkout."""

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TASK = """
import os, sys
import manta as ray
assert manta_file_in(ray.__file__), ray.__file__
ray.init(num_cpus=1)

@ray.remote
def where():
    import manta
    return manta.__file__

assert ray.get(where.remote(), timeout=60) == ray.__file__
print("installed manta ran a task")
ray.shutdown()
"""


def _run(cmd, env, cwd, timeout=600):
    out = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                         stdin=subprocess.DEVNULL)
    assert out.returncode == 0, (cmd, out.stdout[-3000:], out.stderr[-3000:])
    return out.stdout


@pytest.mark.timeout(900)
def test_pip_install_builds_the_core_and_installs_the_command(tmp_path):
    if not shutil.which("cmake"):
        pytest.skip("cmake is not installed")
    venv = tmp_path / "venv"
    # The venv sees this interpreter's packages (numpy, cloudpickle) but gets
    # manta only from the install below.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True, timeout=120)
    py, manta = str(venv / "bin" / "python"), str(venv / "bin" / "manta")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    sessions = tempfile.mkdtemp(prefix="mt-", dir="/tmp")  # short: unix socket paths
    env["MANTA_TEMP_DIR"] = sessions
    _run([py, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check", "--no-input",
          ROOT], env, str(tmp_path))

    site = _run([py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], env,
                str(tmp_path)).strip()
    script = f"def manta_file_in(f): return f.startswith({site!r})\n" + TASK
    assert "installed manta ran a task" in _run([py, "-c", script], env, str(tmp_path))

    assert os.path.exists(manta)
    try:
        out = _run([manta, "start", "--head", "--port", "0", "--num-cpus", "1"], env,
                   str(tmp_path), timeout=60)
        assert "manta start --address" in out, out
        assert "1 node" in _run([manta, "status"], env, str(tmp_path), timeout=60)
    finally:
        stop = subprocess.run([manta, "stop"], env=env, cwd=str(tmp_path), capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)
    shutil.rmtree(sessions, ignore_errors=True)
    assert stop.returncode == 0 and "Stopped 1 manta node" in stop.stdout, stop
