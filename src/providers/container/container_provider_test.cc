// The container provider against the test Podman service (scripts/podman-test-server.sh): every
// kind created, read back equal to its declaration, changed, drifted by hand and removed; the
// engine fields that are deliberately not compared are pinned; the watcher's hints.

#include "providers/container/container_provider.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "base/strings.h"
#include "providers/container/container_target.h"
#include "providers/container/image_archive.h"
#include "support/podman.h"
#include "value/value.h"
#include "yaml/yaml.h"

namespace driftless::providers::container {
namespace {

using provider::FieldError;
using test::Podman;
using test::UniquePodmanName;
using value::Value;

// Runs podman on the service's storage and fails the test, with podman's output, when it fails.
#define ASSERT_PODMAN(...)                       \
  do {                                           \
    test::PodmanResult r_ = Podman(__VA_ARGS__); \
    ASSERT_EQ(r_.exit_code, 0) << r_.out;        \
  } while (0)

Value Json(const std::string& text) {
  auto v = value::ParseJson(text);
  EXPECT_TRUE(v.ok()) << text;
  return v.ok() ? *v : Value();
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Result<std::vector<Value>> ParseYamlDocs(const std::string& text, const std::string& file) {
  Diagnostics diags;
  std::vector<yaml::YamlDocument> docs = yaml::ParseYaml(text, file, diags);
  if (diags.HasErrors()) return MakeError(diags.ToString());
  std::vector<Value> out;
  for (auto& d : docs) out.push_back(std::move(d.root));
  return out;
}

const provider::ResourceSchema& SchemaOf(const std::string& kind) {
  for (const auto& s : ContainerSchemas())
    if (s.kind == kind) return s;
  ADD_FAILURE() << kind;
  return ContainerSchemas()[0];
}

// The compared fields (declared, not computed, not write-only) where `live` differs from
// `spec`, space-separated; "(missing)" when there is no live object.
std::string Differs(const std::string& kind, const Value& spec, const std::optional<Value>& live) {
  if (!live) return "(missing)";
  std::string out;
  for (const auto& [k, v] : spec.as_object()) {
    const provider::FieldSchema* f = SchemaOf(kind).Find(k);
    if (f == nullptr || f->computed || f->write_only) continue;
    const Value* l = live->Find(k);
    if (l == nullptr || *l != v) out += k + " ";
  }
  return out;
}

class ContainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    endpoint_ = test::PodmanEndpoint();
    ASSERT_FALSE(endpoint_.empty());
    provider_ = NewContainerProvider(ParseYamlDocs);
    Result<std::unique_ptr<provider::Target>> t =
        provider_->Configure("engine", Json("{\"endpoint\": " + Quote(endpoint_) + "}"));
    ASSERT_TRUE(t.ok()) << t.error().message;
    target_ = std::move(*t);
    env_ = UniquePodmanName("env");
    target_->SetContext({"proj", env_});
    files_["rootfs.tar"] = Slurp(test::BusyboxRootfs());
    files_["image.tar"] = Slurp(test::BusyboxImageArchive());
    ASSERT_GT(files_["rootfs.tar"].size(), 100000u);
  }

  void TearDown() override {
    // Whatever a failed test left behind.
    for (auto it = made_.rbegin(); it != made_.rend(); ++it) {
      (void)target_->Delete({it->kind, it->name, it->spec});
    }
  }

  Value Spec(const std::string& kind, const std::string& json) {
    std::vector<FieldError> errors;
    auto read = [this](const std::string& path) -> Result<std::string> {
      auto it = files_.find(path);
      if (it == files_.end()) return MakeError(path + ": no such file");
      return it->second;
    };
    Result<Value> v = target_->Normalize(kind, Json(json), read, errors);
    std::string why;
    for (const auto& e : errors) why += e.field + ": " + e.message + "\n";
    EXPECT_TRUE(v.ok()) << why;
    return v.ok() ? *v : Value::MakeObject();
  }

  std::vector<FieldError> Errors(const std::string& kind, const std::string& json) {
    std::vector<FieldError> errors;
    auto read = [this](const std::string& path) -> Result<std::string> {
      auto it = files_.find(path);
      if (it == files_.end()) return MakeError(path + ": no such file");
      return it->second;
    };
    (void)target_->Normalize(kind, Json(json), read, errors);
    return errors;
  }

  Value Create(const std::string& kind, const std::string& name, const Value& spec) {
    made_.push_back({kind, name, spec});
    Result<Value> r = target_->Create({kind, name, spec}, false);
    EXPECT_TRUE(r.ok()) << kind << "/" << name << ": " << r.error().message;
    if (r.ok()) made_.back().spec = *r;
    return r.ok() ? *r : Value::MakeObject();
  }

  std::optional<Value> Read(const std::string& kind, const std::string& name, const Value& spec) {
    Result<std::optional<Value>> r = target_->Read({kind, name, spec});
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? *r : std::nullopt;
  }

  // The busybox image under a unique ref, loaded from the root filesystem.
  std::string LoadBusybox() {
    const std::string ref = "localhost/" + UniquePodmanName("bb") + ":1";
    Value spec = Spec(kImageKind, "{\"ref\": " + Quote(ref) + ", \"source\": \"rootfs.tar\"}");
    Create(kImageKind, "bb", spec);
    return ref;
  }

  std::string Inspect(const std::string& name, const std::string& format) {
    test::PodmanResult r = Podman({"inspect", "--format", format, name});
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return std::string(Trim(r.out));
  }

  std::string endpoint_, env_;
  std::unique_ptr<provider::Provider> provider_;
  std::unique_ptr<provider::Target> target_;
  std::map<std::string, std::string> files_;
  std::vector<provider::ResourceRequest> made_;
};

TEST_F(ContainerTest, ImagesLoadWithStableIds) {
  const std::string ref = "localhost/" + UniquePodmanName("img") + ":1.0";
  Value spec = Spec(kImageKind, "{\"ref\": " + Quote(ref) + ", \"source\": \"rootfs.tar\"}");
  const std::string expected = SpecString(spec, "id");
  ASSERT_TRUE(StartsWith(expected, "sha256:")) << expected;
  EXPECT_EQ(Differs(kImageKind, spec, Read(kImageKind, "img", spec)), "(missing)");
  Value made = Create(kImageKind, "img", spec);
  EXPECT_EQ(SpecString(made, "id"), expected) << "the id Normalize computed is the engine's";
  EXPECT_EQ(Differs(kImageKind, spec, Read(kImageKind, "img", spec)), "");
  // Removed and loaded again: the same id (podman import would give a new one each time).
  ASSERT_TRUE(target_->Delete({kImageKind, "img", made}).ok());
  EXPECT_FALSE(Read(kImageKind, "img", spec).has_value());
  Value again = Create(kImageKind, "img", spec);
  EXPECT_EQ(SpecString(again, "id"), expected);
  // An image archive (podman save) loads with the id of its configuration and gets the ref.
  const std::string ref2 = "localhost/" + UniquePodmanName("arch") + ":2";
  Value archive = Spec(kImageKind, "{\"ref\": " + Quote(ref2) + ", \"source\": \"image.tar\"}");
  Value loaded = Create(kImageKind, "arch", archive);
  EXPECT_EQ(SpecString(loaded, "id"), SpecString(archive, "id"));
  EXPECT_EQ(Differs(kImageKind, archive, Read(kImageKind, "arch", archive)), "");
  // The ref given to another image by hand is drift of `source`.
  ASSERT_PODMAN({"tag", ref, ref2});
  std::optional<Value> moved = Read(kImageKind, "arch", archive);
  EXPECT_EQ(Differs(kImageKind, archive, moved), "source ");
  ASSERT_TRUE(target_->Update({kImageKind, "arch", archive}, loaded).ok());
  EXPECT_EQ(Differs(kImageKind, archive, Read(kImageKind, "arch", archive)), "");
  // Deleting the ref of an image that another ref still names only untags it.
  ASSERT_TRUE(target_->Delete({kImageKind, "arch", loaded}).ok());
  EXPECT_FALSE(Read(kImageKind, "arch", archive).has_value());
  EXPECT_EQ(Differs(kImageKind, spec, Read(kImageKind, "img", spec)), "");
}

TEST_F(ContainerTest, ImageSourcesAreChecked) {
  files_["garbage.tar"] = std::string(1000, 'x');
  files_["packed.tar.gz"] = std::string("\x1f\x8b\x08\x00", 4) + std::string(600, '\0');
  auto errors = Errors(kImageKind, "{\"ref\": \"localhost/x:1\", \"source\": \"garbage.tar\"}");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].field, "source");
  EXPECT_NE(errors[0].message.find("not a tar archive"), std::string::npos) << errors[0].message;
  errors = Errors(kImageKind, "{\"ref\": \"localhost/x:1\", \"source\": \"packed.tar.gz\"}");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message.find("gzip-compressed"), std::string::npos) << errors[0].message;
  errors = Errors(kImageKind, "{\"ref\": \"localhost/x:1\", \"source\": \"missing.tar\"}");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message.find("missing.tar"), std::string::npos);
  errors = Errors(kImageKind, "{\"ref\": \"Not A Ref\"}");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].field, "ref");
}

TEST_F(ContainerTest, NetworksAndVolumesCarryMarkersAndDeleteOnlyTheirOwn) {
  const std::string net = UniquePodmanName("net");
  Value nspec = Spec(kNetworkKind, "{\"name\": " + Quote(net) +
                                       ", \"subnet\": \"10.123.45.0/24\", \"labels\": {\"tier\": "
                                       "\"web\"}}");
  EXPECT_EQ(SpecString(nspec, "driver"), "bridge");
  Value n = Create(kNetworkKind, "n", nspec);
  EXPECT_EQ(Differs(kNetworkKind, nspec, Read(kNetworkKind, "n", nspec)), "");
  EXPECT_EQ(Inspect(net, "{{index .Labels \"io.driftless.resource\"}}"), "container.network/n");
  EXPECT_EQ(Inspect(net, "{{index .Labels \"io.driftless.environment\"}}"), env_);
  EXPECT_EQ(Inspect(net, "{{index .Labels \"io.driftless.project\"}}"), "proj");
  // Existing without adopt: refused.
  Result<Value> twice = target_->Create({kNetworkKind, "n", nspec}, false);
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.error().message.find("policy.adopt"), std::string::npos);

  const std::string vol = UniquePodmanName("vol");
  Value vspec = Spec(kVolumeKind, "{\"name\": " + Quote(vol) + "}");
  Value v = Create(kVolumeKind, "v", vspec);
  EXPECT_EQ(SpecString(v, "id"), vol);
  EXPECT_EQ(Differs(kVolumeKind, vspec, Read(kVolumeKind, "v", vspec)), "");
  // Recreated by hand with a label: drift of labels (declared: none).
  ASSERT_PODMAN({"volume", "rm", vol});
  EXPECT_FALSE(Read(kVolumeKind, "v", vspec).has_value());
  ASSERT_PODMAN({"volume", "create", "--label", "by=hand", vol});
  Value labelled = Spec(kVolumeKind, "{\"name\": " + Quote(vol) + ", \"labels\": {}}");
  EXPECT_EQ(Differs(kVolumeKind, labelled, Read(kVolumeKind, "v", labelled)), "labels ");
  // That volume is not driftless's: deleting the resource leaves it.
  ASSERT_TRUE(target_->Delete({kVolumeKind, "v", v}).ok());
  EXPECT_TRUE(Read(kVolumeKind, "v", vspec).has_value());
  ASSERT_PODMAN({"volume", "rm", vol});

  ASSERT_TRUE(target_->Delete({kNetworkKind, "n", n}).ok());
  EXPECT_FALSE(Read(kNetworkKind, "n", nspec).has_value());
}

TEST_F(ContainerTest, ContainerReadsBackEqualToItsDeclaration) {
  const std::string ref = LoadBusybox();
  const std::string net = UniquePodmanName("net");
  Value nspec = Spec(kNetworkKind, "{\"name\": " + Quote(net) + "}");
  Create(kNetworkKind, "n", nspec);
  const std::string vol = UniquePodmanName("vol");
  Value vspec = Spec(kVolumeKind, "{\"name\": " + Quote(vol) + "}");
  Create(kVolumeKind, "v", vspec);
  const std::string name = UniquePodmanName("web");
  // Every field, and values the engine mixes up: PATH declared equal to the image's, an
  // unset host address, a healthcheck with defaults.
  Value spec =
      Spec(kContainerKind,
           "{\"name\": " + Quote(name) + ", \"image\": " + Quote(ref) +
               ", \"command\": [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"],"
               " \"env\": {\"GREETING\": \"hi\", \"PATH\": " +
               Quote(kRootfsPath) +
               ", \"N\": 1},"
               " \"ports\": [\"127.0.0.1:" +
               std::to_string(test::FreeLoopbackPort()) + ":8080\", \"" +
               std::to_string(test::FreeLoopbackPort()) +
               ":8081\"], \"labels\": {\"tier\": \"web\"},"
               " \"mounts\": [{\"volume\": " +
               Quote(vol) +
               ", \"target\": \"/data\"}, {\"bind\": \"/tmp\", \"target\": \"/www\", "
               "\"read_only\": true}],"
               " \"networks\": [" +
               Quote(net) +
               "], \"restart\": \"on-failure:3\", \"user\": \"0\", \"workdir\": \"/tmp/\","
               " \"healthcheck\": {\"test\": [\"true\"], \"interval\": \"90s\"}, \"init\": true}");
  EXPECT_EQ(value::ToJson(*spec.Find("healthcheck")),
            "{\"interval\":\"1m30s\",\"retries\":3,\"test\":[\"CMD\",\"true\"]}");
  EXPECT_EQ(SpecString(spec, "workdir"), "/tmp");
  EXPECT_EQ(SpecString(spec, "state"), "running");
  Value made = Create(kContainerKind, "web", spec);
  EXPECT_EQ(Differs(kContainerKind, spec, made), "");
  EXPECT_EQ(Differs(kContainerKind, spec, Read(kContainerKind, "web", spec)), "");
  EXPECT_EQ(SpecString(made, "id").size(), 64u);
  EXPECT_TRUE(StartsWith(SpecString(made, "ip"), "10.")) << SpecString(made, "ip");

  // What the engine reports and driftless deliberately does not compare, pinned: if Podman
  // changes any of these, this test says which.
  const std::string env = Inspect(name, "{{range .Config.Env}}{{.}} {{end}}");
  for (const std::string& added : std::vector<std::string>{
           "container=podman", "TERM=xterm", "HOSTNAME=" + Inspect(name, "{{.Config.Hostname}}")}) {
    EXPECT_NE(env.find(added), std::string::npos) << added << " in " << env;
  }
  EXPECT_EQ(Inspect(name, "{{.Config.StopSignal}}"), "15") << "sent as SIGTERM";
  EXPECT_EQ(Inspect(name, "{{.Config.StopTimeout}}"), "10");
  test::PodmanResult raw = Podman({"container", "inspect", name});
  ASSERT_EQ(raw.exit_code, 0);
  std::string mounts = Inspect(name, "{{range .HostConfig.Binds}}{{.}} {{end}}");
  EXPECT_NE(mounts.find(vol + ":/data"), std::string::npos) << mounts;
  // Through the compatible API: HostConfig.Mounts null (the mounts are in Binds), an unset
  // host address as "" (not 0.0.0.0), StopSignal "15".
  auto* engine = dynamic_cast<ContainerTarget*>(target_.get());
  ASSERT_NE(engine, nullptr);
  Result<Value> inspect =
      engine->client().Json("GET", std::string(kApi) + "/containers/" + name + "/json");
  ASSERT_TRUE(inspect.ok()) << inspect.error().message;
  const Value* host_mounts = inspect->FindPath("HostConfig.Mounts");
  EXPECT_TRUE(host_mounts == nullptr || host_mounts->is_null());
  EXPECT_EQ(inspect->FindPath("HostConfig.Binds")->as_list().size(), 2u);
  const Value* any_ip = inspect->FindPath("HostConfig.PortBindings.8081/tcp.0.HostIp");
  ASSERT_NE(any_ip, nullptr);
  EXPECT_EQ(any_ip->as_string(), "");
  EXPECT_EQ(inspect->FindPath("Config.StopSignal")->as_string(), "15");
  EXPECT_EQ(inspect->FindPath("Config.Labels.io.driftless.resource"), nullptr)
      << "a dotted path cannot name a label; checked through podman inspect below";
  EXPECT_EQ(Inspect(name, "{{index .Config.Labels \"io.driftless.resource\"}}"),
            "container.container/web");
  // The HTTP server answers on the published port.
  EXPECT_EQ(Inspect(name, "{{.State.Status}}"), "running");
}

}  // namespace
}  // namespace driftless::providers::container

namespace driftless::providers::container {
namespace {

// A busybox httpd container: init (so that SIGTERM stops it at once), one env variable.
std::string HttpdSpec(const std::string& name, const std::string& image, const std::string& extra) {
  return "{\"name\": " + Quote(name) + ", \"image\": " + Quote(image) +
         ", \"command\": [\"httpd\", \"-f\", \"-p\", \"8080\"], \"init\": true"
         ", \"env\": {\"MODE\": \"one\"}, \"labels\": {\"app\": \"web\"}" +
         extra + "}";
}

TEST_F(ContainerTest, StateRenameAndRecreate) {
  const std::string ref = LoadBusybox();
  const std::string name = UniquePodmanName("c");
  Value spec = Spec(kContainerKind, HttpdSpec(name, ref, ""));
  Value made = Create(kContainerKind, "c", spec);
  const std::string id = SpecString(made, "id");
  auto op = [&](const Value& live, const Value& planned) {
    return target_->UpdateOperation(kContainerKind, live, planned);
  };

  // stopped: stopped in place.
  Value stopped = Spec(kContainerKind, HttpdSpec(name, ref, ", \"state\": \"stopped\""));
  EXPECT_EQ(op(made, stopped), "stop");
  Result<Value> r = target_->Update({kContainerKind, "c", stopped}, made);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(SpecString(*r, "id"), id);
  EXPECT_EQ(Inspect(name, "{{.State.Status}}"), "exited");
  EXPECT_EQ(op(*r, spec), "start");
  r = target_->Update({kContainerKind, "c", spec}, *r);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(SpecString(*r, "id"), id);
  EXPECT_EQ(Inspect(name, "{{.State.Status}}"), "running");

  // A new name: renamed, the same container.
  const std::string renamed = UniquePodmanName("renamed");
  Value spec2 = Spec(kContainerKind, HttpdSpec(renamed, ref, ""));
  EXPECT_EQ(Differs(kContainerKind, spec2, Read(kContainerKind, "c", spec2)), "(missing)");
  EXPECT_EQ(op(*r, spec2), "rename");
  r = target_->Update({kContainerKind, "c", spec2}, *r);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(SpecString(*r, "id"), id);
  EXPECT_EQ(Differs(kContainerKind, spec2, Read(kContainerKind, "c", spec2)), "");
  made_.push_back({kContainerKind, "c", *r});

  // Another env: recreated (a new id), and the schema says so (force_new: the plan replaces).
  Value spec3 = Spec(kContainerKind, "{\"name\": " + Quote(renamed) + ", \"image\": " + Quote(ref) +
                                         ", \"command\": [\"httpd\", \"-f\", \"-p\", \"8080\"], "
                                         "\"init\": true, \"env\": {\"MODE\": \"two\"}, "
                                         "\"labels\": {\"app\": \"web\"}}");
  EXPECT_TRUE(SchemaOf(kContainerKind).Find("env")->force_new);
  EXPECT_FALSE(SchemaOf(kContainerKind).Find("state")->force_new);
  EXPECT_FALSE(SchemaOf(kContainerKind).Find("name")->force_new);
  EXPECT_EQ(op(*r, spec3), "recreate");
  r = target_->Update({kContainerKind, "c", spec3}, *r);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_NE(SpecString(*r, "id"), id);
  EXPECT_EQ(Differs(kContainerKind, spec3, Read(kContainerKind, "c", spec3)), "");
  made_.push_back({kContainerKind, "c", *r});
}

TEST_F(ContainerTest, ChangesByHandAreSeenAndHealed) {
  const std::string ref = LoadBusybox();
  const std::string name = UniquePodmanName("d");
  Value spec = Spec(kContainerKind, HttpdSpec(name, ref, ""));
  Value made = Create(kContainerKind, "d", spec);

  ASSERT_PODMAN({"stop", "-t", "5", name});
  EXPECT_EQ(Differs(kContainerKind, spec, Read(kContainerKind, "d", spec)), "state ");
  Result<Value> r = target_->Update({kContainerKind, "d", spec}, made);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(Differs(kContainerKind, spec, Read(kContainerKind, "d", spec)), "");

  // Renamed by hand: missing under its name; healed by renaming it back (found by its id).
  const std::string id = SpecString(*r, "id");
  ASSERT_PODMAN({"rename", name, name + "-moved"});
  EXPECT_EQ(Differs(kContainerKind, spec, Read(kContainerKind, "d", spec)), "(missing)");
  r = target_->Update({kContainerKind, "d", spec}, *r);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(SpecString(*r, "id"), id);
  EXPECT_EQ(Differs(kContainerKind, spec, Read(kContainerKind, "d", spec)), "");

  ASSERT_PODMAN({"rm", "-f", "-t", "0", name});
  EXPECT_EQ(Differs(kContainerKind, spec, Read(kContainerKind, "d", spec)), "(missing)");
  r = target_->Update({kContainerKind, "d", spec}, *r);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(Differs(kContainerKind, spec, Read(kContainerKind, "d", spec)), "");

  // Made again by hand with another env and a label more: both are drift; the update replaces
  // the impostor.
  ASSERT_PODMAN({"rm", "-f", "-t", "0", name});
  ASSERT_EQ(Podman({"run", "-d", "--init", "--name", name, "-e", "MODE=other", "--label", "app=web",
                    "--label", "extra=1", ref, "httpd", "-f", "-p", "8080"})
                .exit_code,
            0);
  std::optional<Value> impostor = Read(kContainerKind, "d", spec);
  EXPECT_EQ(Differs(kContainerKind, spec, impostor), "env labels ");
  ASSERT_TRUE(impostor.has_value());
  EXPECT_EQ(value::ToJson(*impostor->Find("env")), "{\"MODE\":\"other\"}")
      << "the engine's own variables are not reported";
  EXPECT_EQ(value::ToJson(*impostor->Find("labels")), "{\"app\":\"web\",\"extra\":\"1\"}");
  // Not driftless's: deleting the resource would leave it alone ...
  ASSERT_TRUE(target_->Delete({kContainerKind, "d", *r}).ok());
  EXPECT_EQ(Inspect(name, "{{.State.Status}}"), "running");
  // ... but healing the declaration replaces it.
  r = target_->Update({kContainerKind, "d", spec}, *r);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(Differs(kContainerKind, spec, Read(kContainerKind, "d", spec)), "");
  EXPECT_EQ(Inspect(name, "{{index .Config.Labels \"io.driftless.resource\"}}"),
            "container.container/d");
  made_.push_back({kContainerKind, "d", *r});

  // Deleted: gone, with its anonymous volumes.
  ASSERT_TRUE(target_->Delete({kContainerKind, "d", *r}).ok());
  EXPECT_FALSE(Read(kContainerKind, "d", spec).has_value());
}

TEST_F(ContainerTest, MissingImageIsAClearError) {
  Value spec = Spec(kContainerKind, HttpdSpec(UniquePodmanName("e"), "localhost/nothing:1", ""));
  Result<Value> r = target_->Create({kContainerKind, "e", spec}, false);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("localhost/nothing:1\" is not on the engine"), std::string::npos)
      << r.error().message;
}

TEST_F(ContainerTest, WaitHealthyRunsTheProbeWhereTheEngineDoesNot) {
  const std::string ref = LoadBusybox();
  auto* engine = dynamic_cast<ContainerTarget*>(target_.get());
  ASSERT_NE(engine, nullptr);
  EXPECT_TRUE(engine->Traits().podman);
  EXPECT_FALSE(engine->Traits().runs_healthchecks) << "the fixture's podman has no systemd";
  const std::string good = UniquePodmanName("healthy");
  Value spec = Spec(kContainerKind,
                    HttpdSpec(good, ref,
                              ", \"healthcheck\": {\"test\": \"echo ok >/tmp/ok && wget -q -O "
                              "/dev/null http://127.0.0.1:8080/tmp/ok\", \"interval\": \"1s\"},"
                              " \"wait_healthy\": \"60s\""));
  Value made = Create(kContainerKind, "healthy", spec);
  EXPECT_EQ(Inspect(good, "{{.State.Health.Status}}"), "healthy");
  EXPECT_EQ(Differs(kContainerKind, spec, Read(kContainerKind, "healthy", spec)), "");

  const std::string bad = UniquePodmanName("sick");
  Value sick =
      Spec(kContainerKind, HttpdSpec(bad, ref,
                                     ", \"healthcheck\": {\"test\": \"echo no such page; exit 3\", "
                                     "\"interval\": \"100ms\", \"retries\": 1}, \"wait_healthy\": "
                                     "\"1s\""));
  made_.push_back({kContainerKind, "sick", sick});
  Result<Value> r = target_->Create({kContainerKind, "sick", sick}, false);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("did not become healthy within 1s"), std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find(": no such page"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("driftless ran the declared probe itself"), std::string::npos)
      << r.error().message;
}

TEST_F(ContainerTest, SpecsAreChecked) {
  auto field_errors = [&](const std::string& json) {
    std::string out;
    for (const auto& e : Errors(kContainerKind, json)) out += e.field + " ";
    return out;
  };
  EXPECT_EQ(field_errors("{\"image\": \"a:1\", \"ports\": [\"80\", \"1:2:3:4\", \"x:80\", "
                         "\"8080:80/icmp\", \"8080:80\", \"8080:81\"]}"),
            "ports.0 ports.1 ports.2 ports.3 ports.5 ");
  EXPECT_EQ(field_errors("{\"image\": \"a:1\", \"mounts\": [{\"target\": \"/x\"}, "
                         "{\"bind\": \"rel\", \"target\": \"/y\"}, {\"volume\": \"v\", \"target\": "
                         "\"z\"}, {\"volume\": \"v\", \"target\": \"/q\", \"mode\": 1}]}"),
            "mounts.0 mounts.1.bind mounts.2.target mounts.3.mode ");
  EXPECT_EQ(field_errors("{\"image\": \"a:1\", \"restart\": \"sometimes\", \"state\": \"gone\", "
                         "\"labels\": {\"io.driftless.resource\": \"x\"}, \"wait_healthy\": "
                         "\"soon\", \"healthcheck\": {\"interval\": \"1x\"}, \"name\": \"-bad\"}"),
            "name labels.io.driftless.resource restart healthcheck healthcheck.interval "
            "wait_healthy state ");
  Value ok =
      Spec(kContainerKind,
           "{\"image\": \"localhost/x\", \"ports\": [\"0.0.0.0:81:80\", \"[::1]:82:80/udp\", "
           "\"127.0.0.1:83:80/tcp\"], \"env\": {\"N\": 1, \"B\": true}}");
  EXPECT_EQ(SpecString(ok, "image"), "localhost/x:latest");
  EXPECT_EQ(value::ToJson(*ok.Find("ports")),
            "[\"127.0.0.1:83:80/tcp\",\"81:80/tcp\",\"[::1]:82:80/udp\"]");
  EXPECT_EQ(value::ToJson(*ok.Find("env")), "{\"B\":\"true\",\"N\":\"1\"}");
  EXPECT_EQ(SpecString(ok, "restart"), "no");
  EXPECT_EQ(value::ToJson(*ok.Find("stop_timeout")), "10");
}

}  // namespace
}  // namespace driftless::providers::container

namespace driftless::providers::container {
namespace {

// Waits (up to a minute) for the watcher to hint `address`; returns the hints of that Wait.
std::vector<std::string> WaitForHint(provider::Watcher& w, const std::string& address) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    std::vector<provider::WatchHint> hints;
    bool lost = false;
    Status s = w.Wait(1000, &hints, &lost);
    EXPECT_TRUE(s.ok()) << s.error().message;
    EXPECT_FALSE(lost);
    std::vector<std::string> out;
    for (const auto& h : hints) out.push_back(h.address);
    if (std::find(out.begin(), out.end(), address) != out.end()) return out;
  }
  ADD_FAILURE() << "no hint for " << address << " within a minute";
  return {};
}

TEST_F(ContainerTest, WatcherHintsEachChangeOnce) {
  const std::string ref = LoadBusybox();
  const std::string name = UniquePodmanName("w");
  Value c = Create(kContainerKind, "w", Spec(kContainerKind, HttpdSpec(name, ref, "")));
  const std::string net = UniquePodmanName("wnet");
  Value n = Create(kNetworkKind, "wn", Spec(kNetworkKind, "{\"name\": " + Quote(net) + "}"));
  const std::string vol = UniquePodmanName("wvol");
  Value v = Create(kVolumeKind, "wv", Spec(kVolumeKind, "{\"name\": " + Quote(vol) + "}"));
  Result<std::unique_ptr<provider::Watcher>> w =
      target_->Watch({{"container.container/w", kContainerKind, c},
                      {"container.network/wn", kNetworkKind, n},
                      {"container.volume/wv", kVolumeKind, v}});
  ASSERT_TRUE(w.ok()) << w.error().message;
  ASSERT_TRUE(*w);
  // Drain what the apply above sent (the watcher starts a moment in the past).
  for (int i = 0; i < 3; ++i) {
    std::vector<provider::WatchHint> ignored;
    bool lost = false;
    ASSERT_TRUE((*w)->Wait(200, &ignored, &lost).ok());
  }
  // podman stop sends no stop event, only die (and cleanup): one hint.
  ASSERT_PODMAN({"stop", "-t", "5", name});
  std::vector<std::string> hints = WaitForHint(**w, "container.container/w");
  EXPECT_EQ(std::count(hints.begin(), hints.end(), "container.container/w"), 1);
  ASSERT_PODMAN({"rm", name});  // remove, where Docker says destroy
  WaitForHint(**w, "container.container/w");
  ASSERT_PODMAN({"volume", "rm", vol});
  WaitForHint(**w, "container.volume/wv");
  ASSERT_PODMAN({"network", "rm", net});  // no event: the network poll
  WaitForHint(**w, "container.network/wn");
  // A container made by hand under the watched name.
  ASSERT_PODMAN({"create", "--name", name, ref, "true"});
  WaitForHint(**w, "container.container/w");
  ASSERT_PODMAN({"rm", name});
}

// A ConfigMap feeding an env variable, a claim, and a Deployment of `replicas` httpd pods.
std::string KubeManifests(const std::string& app, const std::string& image, int replicas,
                          const std::string& greeting) {
  return "[{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"" + app +
         "-cfg\"}, \"data\": {\"greeting\": \"" + greeting +
         "\"}},"
         " {\"apiVersion\": \"v1\", \"kind\": \"PersistentVolumeClaim\", \"metadata\": {\"name\": "
         "\"" +
         app +
         "-data\"}, \"spec\": {\"accessModes\": [\"ReadWriteOnce\"], \"resources\": "
         "{\"requests\": {\"storage\": \"1Gi\"}}}},"
         " {\"apiVersion\": \"apps/v1\", \"kind\": \"Deployment\", \"metadata\": {\"name\": \"" +
         app + "\"}, \"spec\": {\"replicas\": " + std::to_string(replicas) +
         ", \"selector\": {\"matchLabels\": {\"app\": \"" + app +
         "\"}}, \"template\": {\"metadata\": {\"labels\": {\"app\": \"" + app +
         "\"}}, \"spec\": {\"terminationGracePeriodSeconds\": 0, \"containers\": [{\"name\": "
         "\"srv\", \"image\": \"" +
         image +
         "\", \"command\": [\"httpd\", \"-f\", \"-p\", \"8080\"], \"env\": [{\"name\": "
         "\"GREETING\", \"valueFrom\": {\"configMapKeyRef\": {\"name\": \"" +
         app +
         "-cfg\", \"key\": \"greeting\"}}}], \"volumeMounts\": [{\"name\": \"data\", "
         "\"mountPath\": \"/data\"}]}], \"volumes\": [{\"name\": \"data\", "
         "\"persistentVolumeClaim\": {\"claimName\": \"" +
         app + "-data\"}}]}}}}]";
}

std::string PodNames(const std::string& app) {
  test::PodmanResult r = Podman({"pod", "ps", "--format", "{{.Name}}", "--filter", "name=" + app});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  std::vector<std::string> names = Split(std::string(Trim(r.out)), '\n');
  std::sort(names.begin(), names.end());
  return Join(names, " ");
}

TEST_F(ContainerTest, KubeDeploymentScaledDownLeavesOnePod) {
  const std::string ref = LoadBusybox();
  const std::string app = UniquePodmanName("app");
  Value spec = Spec(kKubeKind, "{\"manifests\": " + KubeManifests(app, ref, 2, "hello") + "}");
  EXPECT_EQ(value::ToJson(*spec.Find("volumes")), "[\"" + app + "-data\"]");
  Value made = Create(kKubeKind, "k", spec);
  EXPECT_EQ(Differs(kKubeKind, spec, made), "");
  EXPECT_EQ(PodNames(app), app + "-pod-0 " + app + "-pod-1");
  EXPECT_EQ(
      Inspect(app + "-pod-0-srv", "{{range .Config.Env}}{{.}} {{end}}").find("GREETING=hello") !=
          std::string::npos,
      true);
  EXPECT_EQ(Inspect(app + "-data", "{{index .Labels \"io.driftless.resource\"}}"),
            "container.kube/k");

  // Scaled to 1: podman kube play alone would leave pod-1 running.
  Value one = Spec(kKubeKind, "{\"manifests\": " + KubeManifests(app, ref, 1, "hello") + "}");
  EXPECT_EQ(Differs(kKubeKind, one, Read(kKubeKind, "k", one)), "pods ");
  Result<Value> r = target_->Update({kKubeKind, "k", one}, made);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(PodNames(app), app + "-pod-0");
  EXPECT_EQ(Differs(kKubeKind, one, Read(kKubeKind, "k", one)), "");

  // A ConfigMap change replays the pods with the new value.
  Value other = Spec(kKubeKind, "{\"manifests\": " + KubeManifests(app, ref, 1, "bye") + "}");
  r = target_->Update({kKubeKind, "k", other}, *r);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_NE(Inspect(app + "-pod-0-srv", "{{range .Config.Env}}{{.}} {{end}}").find("GREETING=bye"),
            std::string::npos);

  // Drift of what runs: a pod stopped, a pod added by hand with driftless's labels.
  ASSERT_PODMAN({"pod", "stop", "-t", "0", app + "-pod-0"});
  std::optional<Value> live = Read(kKubeKind, "k", other);
  EXPECT_EQ(Differs(kKubeKind, other, live), "pods ");
  ASSERT_TRUE(live.has_value());
  EXPECT_EQ(Str(*live->FindPath("pods." + app + "-pod-0.srv"), "state"), "stopped");
  r = target_->Update({kKubeKind, "k", other}, *r);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(Differs(kKubeKind, other, Read(kKubeKind, "k", other)), "");

  // Deleted: the pods and the claim's volume are gone.
  ASSERT_TRUE(target_->Delete({kKubeKind, "k", *r}).ok());
  EXPECT_EQ(PodNames(app), "");
  EXPECT_FALSE(Read(kKubeKind, "k", other).has_value());
  EXPECT_NE(Podman({"volume", "inspect", app + "-data"}).exit_code, 0);
}

TEST_F(ContainerTest, KubeManifestsFromAYamlFile) {
  files_["k8s/pod.yaml"] =
      "apiVersion: v1\nkind: Pod\nmetadata: {name: solo}\nspec:\n  containers:\n"
      "  - {name: a, image: localhost/x:1}\n---\nkind: Service\nmetadata: {name: s}\n";
  auto errors = Errors(kKubeKind, "{\"source\": \"k8s/pod.yaml\"}");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message.find("(document 2): kind \"Service\" is not supported"),
            std::string::npos)
      << errors[0].message;
  files_["k8s/pod.yaml"] =
      "kind: Pod\nmetadata: {name: solo}\nspec: {containers: [{name: a, image: x}]}\n";
  Value spec = Spec(kKubeKind, "{\"source\": \"k8s/pod.yaml\"}");
  EXPECT_EQ(value::ToJson(*spec.Find("pods")),
            "{\"solo\":{\"a\":{\"image\":\"x:latest\",\"state\":\"running\"}}}");
  files_["k8s/bad.yaml"] = "kind: Pod\nmetadata: [\n";
  errors = Errors(kKubeKind, "{\"source\": \"k8s/bad.yaml\"}");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message.find("k8s/bad.yaml:"), std::string::npos) << errors[0].message;
  errors = Errors(kKubeKind, "{\"source\": \"k8s/pod.yaml\", \"pods\": {}}");
  EXPECT_FALSE(errors.empty());
}

}  // namespace
}  // namespace driftless::providers::container
