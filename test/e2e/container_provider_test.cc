// The container provider end to end, against the test Podman service: one repository declares a
// page (file.file), a volume, a network, an image and a busybox httpd container that serves the
// page from a bind mount on a published port. One apply from empty makes it all in dependency
// order and the port serves the page; a second plan is empty; a new env or image recreates the
// container; podman stop, podman rm, a hand-made replacement with another env and a label change
// are each one drift event that `enforce` reverts; a Deployment scaled from 2 to 1 leaves one
// pod; destroy removes everything driftless made and nothing else. Every wait is for an event
// or a state (with a generous deadline), never a sleep that a loaded machine could defeat.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "e2e/harness.h"
#include "support/podman.h"

namespace driftless::test {
namespace {

using Clock = std::chrono::steady_clock;

bool Contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// GET http://127.0.0.1:PORT/PATH; the body, or "" when nothing answers.
std::string HttpGet(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    std::string req = "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
    if (write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  size_t body = out.find("\r\n\r\n");
  return body == std::string::npos ? "" : out.substr(body + 4);
}

// `podman KIND inspect --format FORMAT NAME` ("<error>" when it fails).
std::string Inspect(const std::string& kind, const std::string& what, const std::string& format) {
  PodmanResult r = Podman({kind, "inspect", "--format", format, what});
  return r.exit_code == 0 ? std::string(r.out.substr(0, r.out.find_last_not_of("\n") + 1))
                          : "<" + r.out + ">";
}

bool Exists(const std::string& kind, const std::string& name) {
  return Podman({kind, "exists", name}).exit_code == 0;
}

class ContainerE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    endpoint_ = PodmanEndpoint();
    ASSERT_FALSE(endpoint_.empty());
    id_ = UniquePodmanName("e2e");
    port_ = FreeLoopbackPort();
    box_.WriteRepoFile("images/busybox.tar", Slurp(BusyboxRootfs()));
    box_.WriteRepoFile("images/busybox-archive.tar", Slurp(BusyboxImageArchive()));
    // A project of its own: tests run at once on one service, and the markers name the project.
    box_.WriteRepoFile("driftless.yaml",
                       "project: " + id_ +
                           "\ninclude: [\"*.yaml\"]\ntargets:\n  host: {provider: file, root: \"" +
                           box_.root() + "\"}\n  engine: {provider: container, endpoint: \"" +
                           endpoint_ + "\"}\n");
  }

  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      EXPECT_EQ(Wait(pid_), 0) << ReadFile(BackgroundFile(box_, ".err"));
    }
    (void)Run({"destroy", "default", "--auto-approve"});
  }

  std::string Name(const std::string& what) const { return id_ + "-" + what; }

  // The page, the volume, the network, the image and the container. `env_mode` and `image`
  // (busybox or busybox-archive) vary; `policy` applies to the container.
  void Declare(const std::string& env_mode = "one", const std::string& image = "busybox",
               const std::string& policy = "", const std::string& label = "web") {
    box_.WriteRepoFile(
        "web.yaml",
        "kind: file.directory\nname: www\ntarget: host\nspec: {path: www, mode: \"0755\"}\n"
        "---\nkind: file.file\nname: page\ntarget: host\n"
        "spec: {path: \"${file.directory.www.path}/index.html\", content: \"hello from " +
            id_ +
            "\\n\", mode: \"0644\"}\n"
            "---\nkind: container.image\nname: busybox\ntarget: engine\n"
            "spec: {ref: \"localhost/" +
            id_ +
            ":1\", source: images/busybox.tar}\n"
            "---\nkind: container.image\nname: busybox-archive\ntarget: engine\n"
            "spec: {ref: \"localhost/" +
            id_ +
            "-archive:1\", source: images/busybox-archive.tar}\n"
            "---\nkind: container.volume\nname: data\ntarget: engine\nspec: {name: " +
            Name("data") +
            "}\n"
            "---\nkind: container.network\nname: net\ntarget: engine\nspec: {name: " +
            Name("net") +
            "}\n"
            "---\nkind: container.container\nname: web\ntarget: engine\n"
            "depends_on: [file.file/page]\n" +
            (policy.empty() ? "" : "policy: " + policy + "\n") +
            "spec:\n"
            "  name: " +
            Name("web") +
            "\n"
            "  image: \"${container.image." +
            image +
            ".ref}\"\n"
            "  command: [httpd, -f, -p, \"8080\", -h, /www]\n"
            "  init: true\n"
            "  env: {MODE: " +
            env_mode +
            "}\n"
            "  labels: {app: " +
            label +
            "}\n"
            "  ports: [\"127.0.0.1:" +
            std::to_string(port_) +
            ":8080\"]\n"
            "  mounts:\n"
            "  - {bind: \"" +
            box_.root() +
            "/${file.directory.www.path}\", target: /www, read_only: true}\n"
            "  - {volume: \"${container.volume.data.name}\", target: /data}\n"
            "  networks: [\"${container.network.net.name}\"]\n"
            "  healthcheck: {test: \"wget -q -O /dev/null http://127.0.0.1:8080/index.html\", "
            "interval: 1s}\n"
            "  wait_healthy: 90s\n");
  }

  RunResult Run(const std::vector<std::string>& args) const { return box_.Run(args); }

  void Apply() {
    RunResult a = Run({"apply", "--auto-approve"});
    ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  }

  std::string Page() const { return HttpGet(port_, "/index.html"); }

  void StartWatch() {
    // Podman's operations come as several events (die, cleanup, remove): a second of quiet
    // makes one of them one check.
    pid_ = box_.Start(
        {"watch", "--for", "300s", "--interval", "1h", "--debounce", "1s", "--flap-limit", "20"});
    ASSERT_TRUE(WaitForLines("watch.started", "", 1)) << Output();
  }
  // A change made by hand with `podman ARGS` while the watch is frozen (SIGSTOP): Podman makes a
  // change in several steps (a replacement stops, removes, creates and starts), and the watch,
  // thawed after the last, sees the change whole however slowly the steps were made.
  void ByHand(const std::vector<std::string>& args) {
    ASSERT_TRUE(Freeze(pid_)) << Output();
    PodmanResult r = Podman(args);
    Thaw(pid_);
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }
  std::string Output() const {
    return BackgroundOutput(box_) + ReadFile(BackgroundFile(box_, ".err"));
  }
  // The event lines of `type` about `resource` so far.
  size_t Lines(const std::string& type, const std::string& resource) const {
    std::string out = BackgroundOutput(box_);
    size_t n = 0, start = 0;
    while (start < out.size()) {
      size_t nl = out.find('\n', start);
      std::string line = out.substr(start, nl - start);
      if (Contains(line, "\"type\":\"" + type + "\"") &&
          (resource.empty() || Contains(line, "\"resource\":\"" + resource + "\"")))
        ++n;
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
    return n;
  }
  // Waits (up to 90 s) until there are `count` such lines.
  bool WaitForLines(const std::string& type, const std::string& resource, size_t count) const {
    const auto deadline = Clock::now() + std::chrono::seconds(90);
    while (Clock::now() < deadline) {
      if (Lines(type, resource) >= count) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  Sandbox box_;
  std::string endpoint_, id_;
  int port_ = 0;
  int pid_ = -1;
};

TEST_F(ContainerE2E, ApplyFromEmptyServesThePageThenNothingToDo) {
  Declare();
  RunResult plan = Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(plan.exit_code, 2) << plan.out << plan.err;
  EXPECT_TRUE(Contains(plan.out, "7 to create")) << plan.out;
  Apply();
  EXPECT_EQ(Page(), "hello from " + id_ + "\n");

  // In dependency order: everything the container needs existed before it was created.
  const long long created = std::stoll(Inspect("container", Name("web"), "{{.Created.UnixNano}}"));
  EXPECT_LT(std::stoll(Inspect("volume", Name("data"), "{{.CreatedAt.UnixNano}}")), created);
  EXPECT_LT(std::stoll(Inspect("network", Name("net"), "{{.Created.UnixNano}}")), created);
  struct stat page {};
  ASSERT_EQ(stat((box_.root() + "/www/index.html").c_str(), &page), 0);
  EXPECT_LT(page.st_mtim.tv_sec * 1000000000LL + page.st_mtim.tv_nsec, created);
  EXPECT_EQ(Inspect("container", Name("web"), "{{index .Config.Labels \"io.driftless.project\"}}"),
            id_);
  EXPECT_EQ(Inspect("volume", Name("data"), "{{index .Labels \"io.driftless.resource\"}}"),
            "container.volume/data");

  // A second plan is empty; drift finds nothing.
  plan = Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(plan.exit_code, 0) << plan.out << plan.err;
  RunResult drift = Run({"drift"});
  EXPECT_EQ(drift.exit_code, 0) << drift.out << drift.err;

  // Another env: the container is replaced (a new id), and still serves the page.
  const std::string first_id = Inspect("container", Name("web"), "{{.Id}}");
  Declare("two");
  plan = Run({"plan"});
  EXPECT_TRUE(Contains(plan.out, "-/+ container.container/web")) << plan.out;
  EXPECT_TRUE(Contains(plan.out, "1 to replace")) << plan.out;
  Apply();
  const std::string second_id = Inspect("container", Name("web"), "{{.Id}}");
  EXPECT_NE(second_id, first_id);
  EXPECT_TRUE(Contains(Inspect("container", Name("web"), "{{range .Config.Env}}{{.}} {{end}}"),
                       "MODE=two"));
  EXPECT_EQ(Page(), "hello from " + id_ + "\n");

  // Another image: replaced again, running the other image.
  Declare("two", "busybox-archive");
  plan = Run({"plan"});
  EXPECT_TRUE(Contains(plan.out, "-/+ container.container/web")) << plan.out;
  Apply();
  EXPECT_NE(Inspect("container", Name("web"), "{{.Id}}"), second_id);
  EXPECT_EQ(Inspect("container", Name("web"), "{{.Image}}"),
            Inspect("image", "localhost/" + id_ + "-archive:1", "{{.Id}}"));
  EXPECT_EQ(Page(), "hello from " + id_ + "\n");
  plan = Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(plan.exit_code, 0) << plan.out << plan.err;
}

TEST_F(ContainerE2E, ManualChangesAreOneDriftEventEachAndEnforceRevertsThem) {
  Declare("one", "busybox", "{drift: enforce}");
  Apply();
  StartWatch();
  const std::string web = "container.container/web";
  const std::string name = Name("web");
  const std::string ref = "localhost/" + id_ + ":1";
  size_t n = 0;
  // Each change: one drift.detected, then the remediation's drift.resolved; the page is back.
  auto expect_reverted = [&](const std::string& what) {
    ++n;
    ASSERT_TRUE(WaitForLines("drift.detected", web, n)) << what << "\n" << Output();
    ASSERT_TRUE(WaitForLines("drift.resolved", web, n)) << what << "\n" << Output();
    EXPECT_EQ(Lines("drift.detected", web), n) << what << "\n" << Output();
    EXPECT_EQ(Inspect("container", name, "{{.State.Status}}"), "running") << what;
    EXPECT_EQ(Inspect("container", name, "{{index .Config.Labels \"io.driftless.resource\"}}"), web)
        << what;
    EXPECT_TRUE(
        Contains(Inspect("container", name, "{{range .Config.Env}}{{.}} {{end}}"), "MODE=one"))
        << what;
    EXPECT_EQ(Inspect("container", name, "{{index .Config.Labels \"app\"}}"), "web") << what;
    EXPECT_EQ(Page(), "hello from " + id_ + "\n") << what;
  };

  ByHand({"stop", name});
  expect_reverted("podman stop");
  EXPECT_TRUE(Contains(Output(), "state: stopped")) << Output();

  ByHand({"rm", "-f", name});
  expect_reverted("podman rm");

  // A replacement made by hand with another env, in one command (podman run --replace).
  ByHand({"run", "-d", "--replace", "--init", "--name", name, "-e", "MODE=by-hand", "--label",
          "app=web", ref, "httpd", "-f", "-p", "8080"});
  expect_reverted("a replacement with another env");
  EXPECT_TRUE(Contains(Output(), "MODE: by-hand")) << Output();

  // The same, with the declared env but another label.
  ByHand({"run", "-d", "--replace", "--init", "--name", name, "-e", "MODE=one", "--label",
          "app=other", ref, "httpd", "-f", "-p", "8080"});
  expect_reverted("a label change");
  EXPECT_TRUE(Contains(Output(), "app: other")) << Output();

  // Four changes, four drift events, four remediations in history.
  EXPECT_EQ(Lines("drift.detected", web), 4u) << Output();
  EXPECT_EQ(Lines("drift.detected", ""), 4u) << "nothing else drifted\n" << Output();
}

TEST_F(ContainerE2E, DestroyRemovesWhatItMadeAndNothingElse) {
  // Made by hand first: a container, a volume and a network that driftless must not touch.
  const std::string bystander = Name("bystander");
  ASSERT_EQ(Podman({"volume", "create", Name("keep")}).exit_code, 0);
  ASSERT_EQ(Podman({"network", "create", Name("keepnet")}).exit_code, 0);
  Declare();
  Apply();
  ASSERT_EQ(Podman({"run", "-d", "--init", "--name", bystander, "localhost/" + id_ + ":1", "httpd",
                    "-f", "-p", "8080"})
                .exit_code,
            0);
  RunResult d = Run({"destroy", "default", "--auto-approve"});
  ASSERT_EQ(d.exit_code, 0) << d.out << d.err;
  EXPECT_FALSE(Exists("container", Name("web")));
  EXPECT_FALSE(Exists("volume", Name("data")));
  EXPECT_FALSE(Exists("network", Name("net")));
  EXPECT_FALSE(Exists("image", "localhost/" + id_ + "-archive:1"));
  EXPECT_FALSE(std::filesystem::exists(box_.root() + "/www/index.html"));
  // The image is still used by the bystander: its name went, the image stays for it.
  EXPECT_FALSE(Exists("image", "localhost/" + id_ + ":1"));
  EXPECT_EQ(Inspect("container", bystander, "{{.State.Status}}"), "running");
  EXPECT_TRUE(Exists("volume", Name("keep")));
  EXPECT_TRUE(Exists("network", Name("keepnet")));
  EXPECT_EQ(Run({"state", "list"}).out.find("container."), std::string::npos);
  ASSERT_EQ(Podman({"rm", "-f", "-t", "0", bystander}).exit_code, 0);
  ASSERT_EQ(Podman({"volume", "rm", Name("keep")}).exit_code, 0);
  ASSERT_EQ(Podman({"network", "rm", Name("keepnet")}).exit_code, 0);
}

// A ConfigMap, a claim and a Deployment from a YAML file of the repository.
std::string Deployment(const std::string& app, const std::string& image, int replicas) {
  return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + app +
         "-cfg}\ndata: {greeting: hello}\n"
         "---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: " +
         app +
         "-data}\n"
         "spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n"
         "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: " +
         app + "}\nspec:\n  replicas: " + std::to_string(replicas) +
         "\n  selector: {matchLabels: {app: " + app +
         "}}\n"
         "  template:\n    metadata: {labels: {app: " +
         app +
         "}}\n"
         "    spec:\n      terminationGracePeriodSeconds: 0\n      containers:\n"
         "      - name: srv\n        image: " +
         image +
         "\n        command: [httpd, -f, -p, \"8080\"]\n"
         "        env:\n        - name: GREETING\n          valueFrom: {configMapKeyRef: {name: " +
         app +
         "-cfg, key: greeting}}\n"
         "        volumeMounts: [{name: data, mountPath: /data}]\n"
         "      volumes: [{name: data, persistentVolumeClaim: {claimName: " +
         app + "-data}}]\n";
}

std::string Pods(const std::string& app) {
  PodmanResult r = Podman({"pod", "ps", "--format", "{{.Name}}", "--filter", "name=" + app});
  std::vector<std::string> names;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) names.push_back(line);
  }
  std::sort(names.begin(), names.end());
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : " ") + n;
  return out;
}

TEST_F(ContainerE2E, DeploymentScaledFromTwoToOneLeavesOnePod) {
  const std::string app = Name("app");
  const std::string image = "localhost/" + id_ + ":1";
  auto declare = [&](int replicas) {
    box_.WriteRepoFile("k8s/app.yaml", Deployment(app, image, replicas));
    box_.WriteRepoFile("kube.yaml",
                       "kind: container.image\nname: busybox\ntarget: engine\nspec: {ref: \"" +
                           image +
                           "\", source: images/busybox.tar}\n"
                           "---\nkind: container.kube\nname: app\ntarget: engine\n"
                           "depends_on: [container.image/busybox]\nspec: {source: k8s/app.yaml}\n");
  };
  declare(2);
  Apply();
  EXPECT_EQ(Pods(app), app + "-pod-0 " + app + "-pod-1");
  RunResult plan = Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(plan.exit_code, 0) << plan.out << plan.err;

  declare(1);
  plan = Run({"plan"});
  EXPECT_TRUE(Contains(plan.out, "~ container.kube/app  (update, play")) << plan.out;
  EXPECT_TRUE(Contains(plan.out, app + "-pod-1")) << plan.out;
  Apply();
  EXPECT_EQ(Pods(app), app + "-pod-0");
  plan = Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(plan.exit_code, 0) << plan.out << plan.err;

  // What runs is compared: a pod stopped by hand is drift.
  ASSERT_EQ(Podman({"pod", "stop", "-t", "0", app + "-pod-0"}).exit_code, 0);
  RunResult drift = Run({"drift"});
  EXPECT_EQ(drift.exit_code, 2) << drift.out << drift.err;
  EXPECT_TRUE(Contains(drift.out, "container.kube/app")) << drift.out;
  Apply();
  EXPECT_EQ(Run({"drift"}).exit_code, 0);

  RunResult d = Run({"destroy", "default", "--auto-approve"});
  ASSERT_EQ(d.exit_code, 0) << d.out << d.err;
  EXPECT_EQ(Pods(app), "");
  EXPECT_FALSE(Exists("volume", app + "-data"));
}

}  // namespace
}  // namespace driftless::test
