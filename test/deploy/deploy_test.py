#!/usr/bin/python3
"""Checks the deployment files under deploy/ (docs/deploy.md) with the tools that read them.

- deploy/kubernetes/*.yaml: `kubectl create --dry-run=client --validate=false -o json` parses
  every manifest into the objects kubectl would send, then the objects are checked against
  what driftless needs (probes, secrets, security context, selectors). kubectl maps each kind to
  its API resource through the cluster's discovery documents even on a client dry run (both
  Debian's kubectl 1.20 and 1.32 do: with no cluster, "unable to recognize ...: connection
  refused"), so this test serves the discovery documents of the kinds used here on a loopback
  port and points a kubeconfig at it; it answers nothing else, and the test checks that kubectl
  asked for nothing else (no write reached a server). `kubectl set env --local --list` then
  decode the Deployment (and `set selector --local` the
  Service) into kubectl's typed objects (a string where a number belongs fails).
- deploy/systemd/driftless.service: `systemd-analyze verify` (any warning fails), with the
  ExecStart binary replaced by the one built.
- The flags given to `driftless serve` in both exist in `driftless serve --help`.

Usage: deploy_test.py SOURCE_DIR DRIFTLESS_BIN. Exit 0 passed, 1 failed, 77 skipped (no kubectl
or no systemd-analyze: scripts/setup.sh installs them).
"""

import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading

FAILURES = []


def check(ok, what):
    if not ok:
        FAILURES.append(what)
        print("FAIL: " + what, file=sys.stderr)


def resource(name, kind, namespaced=True):
    return {"name": name, "singularName": kind.lower(), "namespaced": namespaced, "kind": kind,
            "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}


DISCOVERY = {
    "/version": {"major": "1", "minor": "32", "gitVersion": "v1.32.0-discovery-only"},
    "/api": {"kind": "APIVersions", "versions": ["v1"],
             "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                             "serverAddress": "127.0.0.1"}]},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
        {"name": g, "versions": [{"groupVersion": g + "/v1", "version": "v1"}],
         "preferredVersion": {"groupVersion": g + "/v1", "version": "v1"}}
        for g in ("apps", "policy")]},
    "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        resource("services", "Service"), resource("secrets", "Secret"),
        resource("configmaps", "ConfigMap"), resource("namespaces", "Namespace", False)]},
    "/apis/apps/v1": {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1",
                      "resources": [resource("deployments", "Deployment")]},
    "/apis/policy/v1": {"kind": "APIResourceList", "apiVersion": "v1",
                        "groupVersion": "policy/v1",
                        "resources": [resource("poddisruptionbudgets", "PodDisruptionBudget")]},
}


class Discovery(http.server.BaseHTTPRequestHandler):
    """Answers the discovery documents above, 404 to everything else; records every request."""
    requests = []

    def do_GET(self):
        path = self.path.split("?")[0]
        Discovery.requests.append(("GET", path))
        body = DISCOVERY.get(path)
        status = 200 if body is not None else 404
        if body is None:
            body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404,
                    "reason": "NotFound", "message": "only discovery here"}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def other(self):
        Discovery.requests.append((self.command, self.path.split("?")[0]))
        self.send_response(405)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT = do_PATCH = do_DELETE = other

    def log_message(self, *args):
        pass


def run(args, env=None):
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)


def serve_flags(driftless):
    r = run([driftless, "serve", "--help"])
    check(r.returncode == 0, "driftless serve --help exits 0: " + r.stderr)
    return set(re.findall(r"--[a-z][a-z-]*", r.stdout))


def objects_of(text):
    """The objects of kubectl's -o json: one document per object, one after the other."""
    decoder, at, out = json.JSONDecoder(), 0, []
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            return out
        doc, at = decoder.raw_decode(text, at)
        out.extend(doc["items"] if doc.get("kind") == "List" else [doc])


def check_kubernetes(source, kubectl, flags):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Discovery)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    home = tempfile.mkdtemp(prefix="dl_deploy_test_")
    try:
        config = os.path.join(home, "kubeconfig")
        with open(config, "w") as f:
            f.write("apiVersion: v1\nkind: Config\nclusters:\n- name: discovery\n  cluster:\n"
                    "    server: http://127.0.0.1:%d\ncontexts:\n- name: discovery\n"
                    "  context: {cluster: discovery, namespace: default}\n"
                    "current-context: discovery\nusers: []\n" % server.server_address[1])
        env = dict(os.environ, KUBECONFIG=config, HOME=home)
        folder = os.path.join(source, "deploy", "kubernetes")
        by_kind = {}
        for name in sorted(os.listdir(folder)):
            if not name.endswith(".yaml"):
                continue
            path = os.path.join(folder, name)
            r = run([kubectl, "create", "--dry-run=client", "--validate=false", "-o", "json",
                     "--cache-dir", os.path.join(home, "cache"), "-f", path], env)
            check(r.returncode == 0 and r.stderr.strip() == "",
                  "kubectl create --dry-run=client %s: exit %d: %s" % (name, r.returncode,
                                                                      r.stderr))
            if r.returncode != 0:
                continue
            for obj in objects_of(r.stdout):
                by_kind.setdefault(obj["kind"], []).append(obj)
                print("ok: %s %s/%s" % (name, obj["kind"], obj["metadata"]["name"]))
        check(all(m == "GET" for m, _ in Discovery.requests) and
              all(p in DISCOVERY for _, p in Discovery.requests),
              "kubectl asked only for discovery documents: %s" % Discovery.requests)
        deployment = os.path.join(folder, "deployment.yaml")
        r = run([kubectl, "set", "env", "--local", "--list", "-f", deployment], env)
        check(r.returncode == 0, "kubectl set env --local --list (typed decoding): " + r.stderr)
        service = os.path.join(folder, "service.yaml")
        r = run([kubectl, "set", "selector", "--local", "-o", "name", "-f", service,
                 "app.kubernetes.io/name=driftless"], env)
        check(r.returncode == 0, "kubectl set selector --local (typed decoding): " + r.stderr)
    finally:
        server.shutdown()
        shutil.rmtree(home, ignore_errors=True)

    for kind in ("Deployment", "Service", "PodDisruptionBudget", "Secret"):
        check(kind in by_kind, "deploy/kubernetes holds a " + kind)
    if FAILURES:
        return
    secrets = {s["metadata"]["name"]: s for s in by_kind["Secret"]}
    d = by_kind["Deployment"][0]
    spec, pod = d["spec"], d["spec"]["template"]["spec"]
    labels = d["spec"]["template"]["metadata"]["labels"]
    check(spec["replicas"] >= 2, "the Deployment runs several replicas")
    check(all(labels.get(k) == v for k, v in spec["selector"]["matchLabels"].items()),
          "the Deployment's selector matches its pods")
    check(pod.get("automountServiceAccountToken") is False, "no service account token")
    check(pod["securityContext"].get("runAsNonRoot") is True, "runAsNonRoot")
    check(pod.get("terminationGracePeriodSeconds", 30) >= 60, "a grace period for SIGTERM")
    c = pod["containers"][0]
    sc = c["securityContext"]
    check(sc.get("readOnlyRootFilesystem") is True, "read-only root file system")
    check(sc.get("allowPrivilegeEscalation") is False, "no privilege escalation")
    check(sc.get("capabilities", {}).get("drop") == ["ALL"], "every capability dropped")
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/livez"),
                        ("startupProbe", "/livez")):
        got = c.get(probe, {}).get("httpGet", {})
        check(got.get("path") == path and got.get("port") in ports,
              "%s on %s at a declared port" % (probe, path))
    for what in ("requests", "limits"):
        check("memory" in c.get("resources", {}).get(what, {}), "memory " + what)
    args = c["args"]
    check(args[0] == "serve", "the container runs driftless serve")
    for a in args:
        if a.startswith("--"):
            check(a in flags, "driftless serve accepts " + a)
    listen = args[args.index("--listen") + 1]
    check(listen.endswith(":%d" % ports["http"]), "serve listens on the container's port")
    env = {e["name"]: e for e in c["env"]}
    ref = env.get("DRIFTLESS_STATE", {}).get("valueFrom", {}).get("secretKeyRef", {})
    check(ref.get("key") in secrets.get(ref.get("name"), {}).get("stringData", {}),
          "DRIFTLESS_STATE comes from a key of a Secret of secrets.example.yaml")
    state = secrets.get(ref.get("name"), {}).get("stringData", {}).get(ref.get("key"), "")
    check(state.startswith("postgres://"), "the state of several servers is PostgreSQL")
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    check(all(n in volumes for n in mounts.values()), "every mount has a volume")
    cache = env.get("DRIFTLESS_CACHE", {}).get("value")
    check(cache in mounts and "emptyDir" in volumes[mounts[cache]],
          "DRIFTLESS_CACHE is on an emptyDir")
    hook = args[args.index("--webhook-secret-file") + 1]
    folder_of_hook = os.path.dirname(hook)
    vol = volumes.get(mounts.get(folder_of_hook), {})
    check("secret" in vol, "the webhook secret file is on a Secret volume")
    if "secret" in vol:
        check(vol["secret"].get("defaultMode", 0o644) & 0o004 == 0,
              "the webhook secret is not readable by others (driftless refuses it)")
        check(os.path.basename(hook) in
              secrets.get(vol["secret"]["secretName"], {}).get("stringData", {}),
              "the webhook secret's file is a key of its Secret")
    svc = by_kind["Service"][0]["spec"]
    check(all(labels.get(k) == v for k, v in svc["selector"].items()),
          "the Service selects the Deployment's pods")
    check(all(p["targetPort"] in ports or p["targetPort"] in ports.values()
              for p in svc["ports"]), "the Service targets a container port")
    pdb = by_kind["PodDisruptionBudget"][0]["spec"]
    check(all(labels.get(k) == v for k, v in pdb["selector"]["matchLabels"].items()),
          "the PodDisruptionBudget covers the Deployment's pods")
    check(pdb.get("maxUnavailable", spec["replicas"]) < spec["replicas"],
          "the PodDisruptionBudget keeps servers running during a drain")


def check_systemd(source, analyze, driftless, flags):
    unit = os.path.join(source, "deploy", "systemd", "driftless.service")
    with open(unit) as f:
        text = f.read()
    check("/usr/local/bin/driftless serve " in text, "the unit runs /usr/local/bin/driftless")
    home = tempfile.mkdtemp(prefix="dl_deploy_unit_")
    try:
        copy = os.path.join(home, "driftless.service")
        with open(copy, "w") as f:
            f.write(text.replace("/usr/local/bin/driftless", driftless))
        r = run([analyze, "verify", copy])
        check(r.returncode == 0 and r.stdout.strip() == "" and r.stderr.strip() == "",
              "systemd-analyze verify driftless.service: exit %d: %s%s" %
              (r.returncode, r.stdout, r.stderr))
        print("ok: systemd-analyze verify driftless.service")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    exec_start = re.search(r"^ExecStart=(.*)$", text, re.M).group(1)
    for a in exec_start.split():
        if a.startswith("--"):
            check(a in flags, "driftless serve accepts " + a + " (ExecStart)")
    for setting in ("DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes",
                    "StateDirectory=driftless", "ProtectHome=yes", "CapabilityBoundingSet=\n"):
        check(setting in text, "the unit sets " + setting.strip())


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 1
    source, driftless = sys.argv[1], os.path.abspath(sys.argv[2])
    kubectl = os.environ.get("KUBECTL") or shutil.which("kubectl")
    analyze = shutil.which("systemd-analyze")
    if not kubectl or not analyze:
        print("skipped: no %s (scripts/setup.sh installs kubernetes-client and systemd)" %
              ("kubectl" if not kubectl else "systemd-analyze"))
        return 77
    flags = serve_flags(driftless)
    check_kubernetes(source, kubectl, flags)
    check_systemd(source, analyze, driftless, flags)
    if FAILURES:
        print("%d check(s) failed" % len(FAILURES), file=sys.stderr)
        return 1
    print("passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
