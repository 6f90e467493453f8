#!/usr/bin/env bash
# Installs the system parts that some tests need, where this machine allows it (root + apt); starts no
# service. Where it cannot, those tests skip with a reason that says how to enable them.
#   chromium: the browser tests (tests/web) drive Debian's /usr/bin/chromium with Playwright for Python.
#   openssh-server: the sshd tests (tests/integration/sshd_support.py) start a private sshd of their own on
#   loopback addresses, with keys and a config in their temporary directory; no system sshd is started.
set -u
if [ ! -x /usr/sbin/sshd ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup-system: installing openssh-server (for the sshd tests; no sshd is started)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends openssh-server >/dev/null \
        || echo "setup-system: could not install openssh-server: the sshd tests will skip"
    # the package may start or enable a system sshd: the tests want none
    if command -v systemctl >/dev/null 2>&1; then systemctl disable --now ssh.service ssh.socket >/dev/null 2>&1; fi
fi
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup-system: installing chromium (for the browser tests)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends chromium >/dev/null \
        || echo "setup-system: could not install chromium: the browser tests will skip"
fi
# sshd (as root) refuses to start without its privilege separation directory
if [ -x /usr/sbin/sshd ] && [ "$(id -u)" = 0 ] && [ ! -d /run/sshd ]; then mkdir -p -m 0755 /run/sshd; fi
exit 0
