# Shared by the maxmemory probes: start a server on a free loopback port and connect to it.
# Run the probes from the repository root (redis-py comes from .deps, as `make test` installs it).
import socket, subprocess, sys, time
sys.path.insert(0, '.deps/python-redis')
import redis


def free_port():
    s = socket.socket(); s.bind(('127.0.0.1', 0)); p = s.getsockname()[1]; s.close(); return p


def start(cmd):
    """Starts `cmd` (a server command line without its port) on a free port; returns the
    process and a redis-py client once the server answers PING."""
    port = free_port()
    proc = subprocess.Popen(cmd + ['--port', str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    r = redis.Redis(port=port)
    for _ in range(100):
        try: r.ping(); break
        except Exception: time.sleep(0.05)
    return proc, r
