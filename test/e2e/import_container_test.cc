// `driftless state import` with the container provider, against the test Podman service: an
// image, a volume, a network and a running container made by hand with the podman command line
// are taken under management without a call that changes them; the next plan is empty; a
// container declared with a label it lacks is imported and the next plan replaces it (labels
// are set at creation); destroy removes the imported container and network; a container.kube
// cannot be imported, and the error says why.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "e2e/harness.h"
#include "support/podman.h"

namespace driftless::test {
namespace {

bool Contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

bool Exists(const std::string& kind, const std::string& name) {
  return Podman({kind, "exists", name}).exit_code == 0;
}

class ImportContainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    endpoint_ = PodmanEndpoint();
    ASSERT_FALSE(endpoint_.empty());
    id_ = UniquePodmanName("imp");
    image_ = "localhost/" + id_ + ":1";
    box_.WriteRepoFile("driftless.yaml", "project: " + id_ +
                                             "\ninclude: [\"*.yaml\"]\ntargets:\n  engine: "
                                             "{provider: container, endpoint: \"" +
                                             endpoint_ + "\"}\n");
    // Made by hand.
    PodmanResult load = Podman({"load", "-i", BusyboxImageArchive()});
    ASSERT_EQ(load.exit_code, 0) << load.out;
    ASSERT_EQ(Podman({"image", "tag", "localhost/busybox:fixture", image_}).exit_code, 0);
    ASSERT_EQ(Podman({"volume", "create", Name("vol")}).exit_code, 0);
    ASSERT_EQ(Podman({"network", "create", Name("net")}).exit_code, 0);
    for (const char* c : {"web", "labelled"}) {
      PodmanResult run = Podman({"run", "-d", "--name", Name(c), "--network", Name("net"), "-v",
                                 Name("vol") + ":/data", image_, "sleep", "1000"});
      ASSERT_EQ(run.exit_code, 0) << run.out;
    }
  }

  void TearDown() override {
    for (const char* c : {"web", "labelled"}) (void)Podman({"rm", "-f", "-t", "0", Name(c)});
    (void)Podman({"network", "rm", "-f", Name("net")});
    (void)Podman({"volume", "rm", "-f", Name("vol")});
    (void)Podman({"rmi", image_});
  }

  std::string Name(const std::string& what) const { return id_ + "-" + what; }

  std::string Container(const std::string& name, const std::string& extra) const {
    return "---\nkind: container.container\nname: " + name +
           "\ntarget: engine\nspec:\n  name: " + Name(name) +
           "\n  image: \"${container.image.img.ref}\"\n  command: [sleep, \"1000\"]\n"
           "  networks: [\"${container.network.net.name}\"]\n"
           "  mounts:\n  - {volume: \"${container.volume.vol.name}\", target: /data}\n" +
           extra;
  }

  void Declare() {
    box_.WriteRepoFile(
        "engine.yaml",
        "kind: container.image\nname: img\ntarget: engine\nspec: {ref: \"" + image_ +
            "\"}\n"
            "---\nkind: container.volume\nname: vol\ntarget: engine\nspec: {name: " +
            Name("vol") +
            "}\n"
            "---\nkind: container.network\nname: net\ntarget: engine\nspec: {name: " +
            Name("net") + "}\n" + Container("web", "") +
            Container("labelled", "  labels: {app: web}\n"));
  }

  RunResult Run(const std::vector<std::string>& args) const { return box_.Run(args); }
  RunResult Import(const std::string& address, const std::string& id) const {
    return Run({"state", "import", address, id});
  }

  Sandbox box_;
  std::string endpoint_, id_, image_;
};

TEST_F(ImportContainerTest, HandMadeObjectsImportUnchanged) {
  Declare();
  const std::string started =
      Podman({"inspect", "--format", "{{.State.StartedAt}} {{.Id}}", Name("web")}).out;
  for (const auto& [address, id] :
       std::vector<std::pair<std::string, std::string>>{{"container.image/img", image_},
                                                        {"container.volume/vol", Name("vol")},
                                                        {"container.network/net", Name("net")},
                                                        {"container.container/web", Name("web")}}) {
    RunResult r = Import(address, id);
    ASSERT_EQ(r.exit_code, 0) << address << "\n" << r.out << r.err;
    EXPECT_TRUE(Contains(r.out, "leaves it unchanged")) << address << "\n" << r.out;
  }
  // The container declared with a label it does not have: recorded as it is, and the next plan
  // replaces it, as the declaration asks.
  RunResult l = Import("container.container/labelled", Name("labelled"));
  ASSERT_EQ(l.exit_code, 0) << l.out << l.err;
  EXPECT_TRUE(Contains(l.out, "The next plan will replace it")) << l.out;
  EXPECT_EQ(Podman({"inspect", "--format", "{{.State.StartedAt}} {{.Id}}", Name("web")}).out,
            started)
      << "the container was neither restarted nor recreated";

  RunResult p = Run({"plan", "--json"});
  ASSERT_EQ(p.exit_code, 0) << p.out << p.err;
  Json plan;
  ASSERT_TRUE(ReadJson(p.out, &plan)) << p.out;
  for (const Json& c : plan.Find("changes")->items) {
    const std::string want =
        c.Str("address") == "container.container/labelled" ? "replace" : "no-op";
    EXPECT_EQ(c.Str("action"), want) << c.Str("address") << "\n" << p.out;
  }
  RunResult a = Run({"apply", "--auto-approve"});
  ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  EXPECT_EQ(
      Podman({"inspect", "--format", "{{index .Config.Labels \"app\"}}", Name("labelled")}).out,
      "web\n");
  EXPECT_EQ(Run({"plan", "--detailed-exitcode"}).exit_code, 0);

  // Destroy removes the imported container and network (their recorded ids say they are the
  // ones imported).
  RunResult d = Run({"destroy", "default", "--auto-approve"});
  ASSERT_EQ(d.exit_code, 0) << d.out << d.err;
  EXPECT_FALSE(Exists("container", Name("web")));
  EXPECT_FALSE(Exists("network", Name("net")));
}

TEST_F(ImportContainerTest, RefusedCases) {
  Declare();
  RunResult none = Import("container.container/web", Name("nothing"));
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_TRUE(Contains(none.err, "names another object than container.container/web declares"))
      << none.err;
  ASSERT_EQ(Podman({"rm", "-f", "-t", "0", Name("web")}).exit_code, 0);
  RunResult gone = Import("container.container/web", Name("web"));
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_TRUE(Contains(gone.err, "container.container/web (container engine " + endpoint_))
      << gone.err;
  EXPECT_TRUE(Contains(gone.err, "ID \"" + Name("web") + "\" names no container.container there"))
      << gone.err;

  box_.WriteRepoFile("k8s/pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: " + Name("pod") +
                                         "}\nspec:\n  containers:\n  - name: c\n    image: " +
                                         image_ + "\n    command: [sleep, \"1000\"]\n");
  box_.WriteRepoFile(
      "kube.yaml",
      "kind: container.kube\nname: app\ntarget: engine\nspec: {source: k8s/pod.yaml}\n");
  RunResult kube = Import("container.kube/app", Name("pod"));
  EXPECT_EQ(kube.exit_code, 1);
  EXPECT_TRUE(Contains(kube.err, "container.kube cannot be imported")) << kube.err;
  EXPECT_TRUE(Contains(kube.err, "play kube")) << kube.err;
  EXPECT_TRUE(Run({"state", "list"}).out.empty());
}

}  // namespace
}  // namespace driftless::test
