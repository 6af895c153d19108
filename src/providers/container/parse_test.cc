// The container provider's parsers on recorded engine answers: what Podman 4.3 mixes into an
// inspect and what driftless leaves out of the live value, pinned field by field; the text forms
// of ports, durations and refs; tarballs; events and the addresses they hint; play-kube
// documents and the live pods.

#include <gtest/gtest.h>

#include "base/hash.h"
#include "providers/container/container_target.h"
#include "providers/container/fields.h"
#include "providers/container/image_archive.h"
#include "providers/container/inspect.h"
#include "providers/container/kube.h"
#include "providers/container/watcher.h"

namespace driftless::providers::container {
namespace {

using value::Value;

Value Json(const std::string& text) {
  auto v = value::ParseJson(text);
  EXPECT_TRUE(v.ok()) << text;
  return v.ok() ? *v : Value();
}

// GET /v1.41/containers/{name}/json of `podman run -d --init -e MODE=one -e PATH=... --label
// app=web -p 18099:8080 -v pinv:/data -v /tmp:/www:ro localhost/busybox:fixture httpd -f -p
// 8080` on Podman 4.3.1, trimmed to the fields read (and those deliberately not read).
constexpr char kInspect[] =
    R"({"Id": "0d42e6e9b9135caad2667903e289a6d9e647626db60f1b4e2991190fe0ef453f",
 "Name": "/pinc",
 "Image": "sha256:b5e65b6f690fc68a90512e050270d44166477aea85544f58ba6b294c92fd2584",
 "State": {"Status": "running", "Running": true, "Paused": false},
 "Mounts": [{"Type": "volume", "Name": "pinv", "Source": "/tmp/dl-pm.X/root/volumes/pinv/_data",
             "Destination": "/data", "Driver": "local", "Mode": "", "RW": true,
             "Propagation": "rprivate"},
            {"Type": "bind", "Source": "/tmp", "Destination": "/www", "Mode": "", "RW": false,
             "Propagation": "rprivate"}],
 "Config": {"Hostname": "0d42e6e9b913",
            "Env": ["TERM=xterm", "container=podman", "MODE=one",
                    "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=0d42e6e9b913"],
            "Cmd": ["httpd", "-f", "-p", "8080"], "Image": "localhost/busybox:fixture",
            "WorkingDir": "/", "User": "",
            "Labels": {"app": "web", "io.driftless.project": "p",
                       "io.driftless.environment": "e",
                       "io.driftless.resource": "container.container/web"},
            "StopSignal": "15", "StopTimeout": 10, "Entrypoint": []},
 "HostConfig": {"Binds": ["/tmp:/www:ro,rprivate,rbind",
                          "pinv:/data:rw,rprivate,nosuid,nodev,rbind"],
                "PortBindings": {"8080/tcp": [{"HostIp": "", "HostPort": "18099"}]},
                "RestartPolicy": {"Name": "", "MaximumRetryCount": 0}, "Init": true},
 "NetworkSettings": {"IPAddress": "10.88.0.26",
                     "Networks": {"podman": {"IPAddress": "10.88.0.26"}}}})";

// The "Config" of the image's inspect (podman import with ENV PATH and CMD sh).
constexpr char kImageConfig[] = R"({"Hostname": "", "User": "",
 "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"], "Image": "", "Volumes": null,
 "WorkingDir": "", "Entrypoint": null, "Labels": null})";

const char kImageId[] = "sha256:b5e65b6f690fc68a90512e050270d44166477aea85544f58ba6b294c92fd2584";

Value Markers() {
  return Json(R"({"io.driftless.project": "p", "io.driftless.environment": "e",
                  "io.driftless.resource": "container.container/web"})");
}

TEST(Inspect, WhatPodmanMixesInIsLeftOut) {
  Value declared = Json(R"({"image": "localhost/busybox:fixture", "env": {"MODE": "one"}})");
  Value live = LiveContainer(Json(kInspect), Json(kImageConfig), declared, kImageId, Markers());
  // Env: container=podman, TERM=xterm, HOSTNAME=<hostname> and the image's PATH are not the
  // container's own.
  EXPECT_EQ(value::ToJson(*live.Find("env")), R"({"MODE":"one"})");
  // Labels: the markers (all three, with this resource's values) are not reported.
  EXPECT_EQ(value::ToJson(*live.Find("labels")), R"({"app":"web"})");
  // Ports: HostIp "" is any address, as "0.0.0.0" would be.
  EXPECT_EQ(value::ToJson(*live.Find("ports")), R"(["18099:8080/tcp"])");
  // Mounts from the top-level list (HostConfig.Mounts is absent; Binds is not parsed).
  EXPECT_EQ(value::ToJson(*live.Find("mounts")),
            R"([{"read_only":false,"target":"/data","volume":"pinv"},)"
            R"({"bind":"/tmp","read_only":true,"target":"/www"}])");
  // RestartPolicy.Name "" is "no".
  EXPECT_EQ(live.Find("restart")->as_string(), "no");
  EXPECT_EQ(live.Find("image")->as_string(), "localhost/busybox:fixture");
  EXPECT_EQ(live.Find("state")->as_string(), "running");
  EXPECT_TRUE(live.Find("init")->as_bool());
  EXPECT_EQ(live.Find("stop_timeout")->as_int(), 10);
  EXPECT_EQ(live.Find("workdir")->as_string(), "/");
  EXPECT_EQ(live.Find("ip")->as_string(), "10.88.0.26");
  EXPECT_EQ(value::ToJson(*live.Find("networks")), R"(["podman"])");
  // Not reported at all: StopSignal ("15" for SIGTERM), Hostname, Entrypoint, Binds.
  for (const char* k : {"stop_signal", "StopSignal", "hostname", "entrypoint", "binds"}) {
    EXPECT_EQ(live.Find(k), nullptr) << k;
  }
  EXPECT_EQ(live.Find("healthcheck"), nullptr) << "none in the container or its image";
}

TEST(Inspect, DeclaredKeysAreReportedEvenWhenTheyEqualADefault) {
  // PATH declared equal to the image's: reported, or the declaration would never match.
  Value declared = Json(R"({"env": {"MODE": "one", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                            "labels": {"app": "web"}})");
  Value live = LiveContainer(Json(kInspect), Json(kImageConfig), declared, "", Markers());
  EXPECT_EQ(value::ToJson(*live.Find("env")),
            R"({"MODE":"one","PATH":"/usr/sbin:/usr/bin:/sbin:/bin"})");
  // Another PATH than the image's, not declared: the container's own, so drift.
  Value inspect = Json(kInspect);
  inspect.Find("Config")->Find("Env")->as_list()[3] = Value::String("PATH=/opt/bin");
  live = LiveContainer(inspect, Json(kImageConfig), Json("{}"), "", Markers());
  EXPECT_EQ(value::ToJson(*live.Find("env")), R"({"MODE":"one","PATH":"/opt/bin"})");
}

TEST(Inspect, ForeignMarkersAndOtherImagesShow) {
  Value other = Json(R"({"io.driftless.project": "p", "io.driftless.environment": "staging",
                         "io.driftless.resource": "container.container/web"})");
  Value live = LiveContainer(
      Json(kInspect), Json(kImageConfig), Json(R"({"image": "localhost/busybox:fixture"})"),
      "sha256:0000000000000000000000000000000000000000000000000000000000000000", other);
  // Markers of another environment are not this resource's: shown, so they differ.
  EXPECT_EQ(live.Find("labels")->as_object().size(), 4u);
  EXPECT_EQ(live.Find("image")->as_string(),
            "localhost/busybox:fixture (image b5e65b6f690f, not the one "
            "localhost/busybox:fixture names now)");
  // A container whose image name differs entirely reports its own.
  live = LiveContainer(Json(kInspect), Json(kImageConfig), Json(R"({"image": "localhost/a:1"})"),
                       "", Markers());
  EXPECT_EQ(live.Find("image")->as_string(), "localhost/busybox:fixture");
}

TEST(Inspect, ImageVolumesAndHealthchecks) {
  Value inspect = Json(kInspect);
  inspect.Find("Mounts")->as_list().push_back(
      Json(R"({"Type": "volume", "Name": "4f2a", "Destination": "/var/lib/db", "RW": true})"));
  inspect.Find("Config")->Set("Healthcheck",
                              Json(R"({"Test": ["CMD-SHELL", "true"], "Interval": 90000000000,
                             "Timeout": 30000000000, "Retries": 0})"));
  Value image = Json(kImageConfig);
  image.Set("Volumes", Json(R"({"/var/lib/db": {}})"));
  Value live = LiveContainer(inspect, image, Json("{}"), "", Markers());
  EXPECT_EQ(live.Find("mounts")->as_list().size(), 2u) << "the image's anonymous volume";
  // An interval beyond int64 (found by engine_fuzz) reads as the default.
  Value huge = inspect;
  huge.Find("Config")->Find("Healthcheck")->Set("Interval", Value::Double(1e103));
  EXPECT_EQ(
      Str(*LiveContainer(huge, image, Json("{}"), "", Markers()).Find("healthcheck"), "interval"),
      "30s");
  EXPECT_EQ(value::ToJson(*live.Find("healthcheck")),
            R"({"interval":"1m30s","retries":3,"test":["CMD-SHELL","true"]})");
}

TEST(Inspect, NetworksAndVolumes) {
  Value net = Json(R"({"Name": "n", "Id": "abc", "Driver": "bridge",
      "IPAM": {"Driver": "default", "Config": [{"Subnet": "10.99.7.0/24", "Gateway": "10.99.7.1"}]},
      "Labels": {"a": "b", "io.driftless.project": "p", "io.driftless.environment": "e",
                 "io.driftless.resource": "container.container/web"}})");
  Value live = LiveNetwork(net, Json("{}"), Markers());
  EXPECT_EQ(
      value::ToJson(live),
      R"({"driver":"bridge","id":"abc","labels":{"a":"b"},"name":"n","subnet":"10.99.7.0/24"})");
  Value vol = Json(R"({"Name": "v", "Driver": "local", "Labels": {}})");
  EXPECT_EQ(value::ToJson(LiveVolume(vol, Json("{}"), Markers())),
            R"({"driver":"local","id":"v","labels":{},"name":"v"})");
}

TEST(Fields, Ports) {
  std::string why;
  EXPECT_EQ(CanonicalPort("8080:80", &why), "8080:80/tcp");
  EXPECT_EQ(CanonicalPort("0.0.0.0:8080:80/udp", &why), "8080:80/udp");
  EXPECT_EQ(CanonicalPort("127.0.0.1:5432:5432/tcp", &why), "127.0.0.1:5432:5432/tcp");
  EXPECT_EQ(CanonicalPort("[::1]:53:53/udp", &why), "[::1]:53:53/udp");
  for (const char* bad : {"80", "0:80", "70000:80", "a:80", "1.2.3:80:80", "[::1:80:80",
                          "8000-8010:8000-8010", "80:80/icmp", "080:80", ""}) {
    why.clear();
    EXPECT_EQ(CanonicalPort(bad, &why), "") << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
  EXPECT_EQ(PortFromBinding("80/tcp", "", "8080"), "8080:80/tcp");
  EXPECT_EQ(PortFromBinding("80", "0.0.0.0", "8080"), "8080:80/tcp");
  EXPECT_EQ(PortFromBinding("53/udp", "::1", "53"), "[::1]:53:53/udp");
  PortParts p = SplitPort("[::1]:53:54/udp");
  EXPECT_EQ(p.host_ip, "::1");
  EXPECT_EQ(p.host_port, "53");
  EXPECT_EQ(p.container_port, "54/udp");
}

TEST(Fields, DurationsRefsRestartPaths) {
  EXPECT_EQ(ParseDuration("1m30s").value_or(-1), 90000000000LL);
  EXPECT_EQ(ParseDuration("1.5s").value_or(-1), 1500000000LL);
  EXPECT_EQ(ParseDuration("250ms").value_or(-1), 250000000LL);
  EXPECT_EQ(ParseDuration("2h").value_or(-1), 7200000000000LL);
  EXPECT_EQ(ParseDuration("0").value_or(-1), 0);
  for (const char* bad : {"", "10", "1x", "s", "-1s", "1e9s", "99999999999h"})
    EXPECT_FALSE(ParseDuration(bad).has_value()) << bad;
  EXPECT_EQ(FormatDuration(90000000000LL), "1m30s");
  EXPECT_EQ(FormatDuration(3600000000000LL), "1h");
  EXPECT_EQ(FormatDuration(1500000000LL), "1500ms");
  EXPECT_EQ(FormatDuration(0), "0s");
  EXPECT_EQ(CanonicalImageRef("busybox"), "busybox:latest");
  EXPECT_EQ(CanonicalImageRef("localhost:5000/app"), "localhost:5000/app:latest");
  EXPECT_EQ(CanonicalImageRef("localhost/app:1.4"), "localhost/app:1.4");
  EXPECT_EQ(CanonicalImageRef("app@sha256:abc"), "app@sha256:abc");
  EXPECT_EQ(CanonicalImageRef(kImageId), kImageId);
  EXPECT_EQ(CanonicalImageRef("b5e65b6f690f"), "b5e65b6f690f");
  for (const char* bad : {"", "a b", "app:", "/app", "sha256:xyz", "sha256", "a//b"})
    EXPECT_EQ(CanonicalImageRef(bad), "") << bad;
  EXPECT_EQ(CanonicalRestart("on-failure:0"), "on-failure");
  EXPECT_EQ(CanonicalRestart("on-failure:5"), "on-failure:5");
  EXPECT_EQ(CanonicalRestart("sometimes"), "");
  EXPECT_EQ(CleanAbsolutePath("/a/./b/../c/"), "/a/c");
  EXPECT_EQ(CleanAbsolutePath("/../.."), "/");
  EXPECT_EQ(CleanAbsolutePath("rel"), "");
  EXPECT_TRUE(ValidObjectName("web-1.a_b"));
  EXPECT_FALSE(ValidObjectName("-web"));
  EXPECT_FALSE(ValidObjectName("we b"));
}

TEST(Archives, RootfsBecomesADeterministicImageArchive) {
  std::string rootfs;
  AppendTarFile(rootfs, "bin/hello", "#!/bin/sh\necho hi\n");
  FinishTar(rootfs);
  Result<ImageArchive> a = InspectArchive(rootfs, "localhost/x:1");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->kind, ArchiveKind::kRootfs);
  EXPECT_EQ(a->id, "sha256:" + Sha256Hex(RootfsConfig(rootfs)));
  const std::string archive = RootfsArchive(rootfs, "localhost/x:1");
  EXPECT_EQ(archive, RootfsArchive(rootfs, "localhost/x:1"));
  Result<ImageArchive> b = InspectArchive(archive, "localhost/x:1");
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->kind, ArchiveKind::kDockerArchive);
  EXPECT_EQ(b->id, a->id) << "the archive of a root filesystem has the root filesystem's id";
  EXPECT_NE(RootfsConfig(rootfs).find("\"PATH=/usr/local/sbin:"), std::string::npos);
}

TEST(Archives, BadTarballsAreRefusedWithAReason) {
  std::string tar;
  AppendTarFile(tar, "manifest.json",
                R"([{"Config": "c.json", "RepoTags": ["a:1"], "Layers": ["l.tar"]}])");
  FinishTar(tar);
  Result<ImageArchive> r = InspectArchive(tar, "a:1");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("c.json"), std::string::npos) << r.error().message;
  EXPECT_FALSE(ReadTar(tar.substr(0, 700)).ok()) << "truncated";
  std::string corrupt = tar;
  corrupt[10] ^= 1;
  Result<std::vector<TarEntry>> c = ReadTar(corrupt);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message, "not a tar archive");
  EXPECT_NE(ReadTar("\x28\xb5\x2f\xfd rest").error().message.find("zstd"), std::string::npos);
  std::string two;
  AppendTarFile(
      two, "manifest.json",
      R"([{"Config": "a.json", "RepoTags": ["a:1"]}, {"Config": "b.json", "RepoTags": ["b:1"]}])");
  AppendTarFile(two, "a.json", "{}");
  AppendTarFile(two, "b.json", "{\"x\":1}");
  FinishTar(two);
  Result<ImageArchive> picked = InspectArchive(two, "b:1");
  ASSERT_TRUE(picked.ok()) << picked.error().message;
  EXPECT_EQ(picked->id, "sha256:" + Sha256Hex("{\"x\":1}"));
  EXPECT_FALSE(InspectArchive(two, "c:1").ok());
}

TEST(Archives, OciLayout) {
  const std::string config = "{\"architecture\":\"amd64\"}";
  const std::string config_digest = "sha256:" + Sha256Hex(config);
  const std::string manifest = "{\"config\": {\"digest\": \"" + config_digest + "\"}}";
  const std::string manifest_digest = "sha256:" + Sha256Hex(manifest);
  std::string tar;
  AppendTarFile(tar, "oci-layout", "{\"imageLayoutVersion\": \"1.0.0\"}");
  AppendTarFile(tar, "index.json",
                "{\"manifests\": [{\"digest\": \"" + manifest_digest +
                    "\", \"annotations\": {\"org.opencontainers.image.ref.name\": \"1.4\"}}]}");
  AppendTarFile(tar, "blobs/sha256/" + manifest_digest.substr(7), manifest);
  AppendTarFile(tar, "blobs/sha256/" + config_digest.substr(7), config);
  FinishTar(tar);
  Result<ImageArchive> r = InspectArchive(tar, "localhost/app:1.4");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->kind, ArchiveKind::kOciArchive);
  EXPECT_EQ(r->id, config_digest);
}

// Lines of Podman 4.3's /v1.41/events.
constexpr char kDie[] =
    R"({"status":"die","id":"5839ab17d402","from":"localhost/bb:2","Type":"container","Action":"die","Actor":{"ID":"5839ab17d402","Attributes":{"containerExitCode":"137","exitCode":"137","image":"localhost/bb:2","name":"c1","podId":"","io.driftless.project":"p","io.driftless.environment":"e","io.driftless.resource":"container.container/web"}},"scope":"local","time":1796249977,"timeNano":1796249977708286352})";
constexpr char kVolumeRemove[] =
    R"({"status":"remove","Type":"volume","Action":"remove","Actor":{"ID":"","Attributes":{"containerExitCode":"0","image":"","name":"vq","podId":""}},"scope":"local","time":1796251667,"timeNano":1796251667813266675})";
constexpr char kHealth[] =
    R"({"status":"health_status","id":"5839ab17d402","Type":"container","Action":"health_status","Actor":{"ID":"5839ab17d402","Attributes":{"name":"c1"}},"time":1796249967,"timeNano":1796249967522184930,"HealthStatus":"starting"})";

TEST(Events, PodmansLinesAndTheAddressesTheyHint) {
  EngineEvent e;
  ASSERT_TRUE(ParseEvent(kDie, &e));
  EXPECT_EQ(e.type, "container");
  EXPECT_EQ(e.action, "die");
  EXPECT_EQ(e.name, "c1");
  EXPECT_EQ(e.time_nano, 1796249977708286352LL);
  EXPECT_TRUE(RelevantAction("container", "die"));
  EXPECT_TRUE(RelevantAction("container", "remove"));
  EXPECT_TRUE(RelevantAction("container", "destroy"));
  EXPECT_FALSE(RelevantAction("container", "cleanup"));
  EXPECT_FALSE(RelevantAction("container", "exec_died"));
  EXPECT_FALSE(RelevantAction("container", "init"));
  ASSERT_TRUE(ParseEvent(kHealth, &e));
  EXPECT_EQ(e.health, "starting");
  // Docker's seconds-only "time"; out-of-range values (found by engine_fuzz) are no time at all.
  ASSERT_TRUE(ParseEvent(R"({"Type":"container","Action":"die","time":17})", &e));
  EXPECT_EQ(e.time_nano, 17000000000LL);
  ASSERT_TRUE(ParseEvent(R"({"Type":"container","Action":"die","time":17962449974})", &e));
  EXPECT_EQ(e.time_nano, 0);
  EXPECT_FALSE(ParseEvent("not json", &e));
  EXPECT_FALSE(ParseEvent("{\"status\": \"x\"}", &e));

  std::vector<provider::WatchItem> items = {
      {"container.container/web", kContainerKind, Json(R"({"name": "other-name"})")},
      {"container.container/api", kContainerKind,
       Json(R"({"name": "c1", "image": "localhost/bb:2", "healthcheck": {"interval": "5s"}})")},
      {"container.volume/data", kVolumeKind, Json(R"({"name": "vq"})")},
      {"container.kube/app", kKubeKind, Json(R"({"volumes": ["vq"]})")},
      {"container.image/bb", kImageKind, Json(R"({"ref": "localhost/bb:2", "id": "sha256:abc"})")}};
  std::vector<WatchedObject> objects = WatchedObjects(items);
  EXPECT_EQ(objects[1].probe_interval_ns, 5000000000LL);
  ASSERT_TRUE(ParseEvent(kDie, &e));
  // By the marker (this project and environment) and by the name.
  EXPECT_EQ(AddressesFor(objects, e, "p", "e"),
            (std::vector<std::string>{"container.container/api", "container.container/web"}));
  EXPECT_EQ(AddressesFor(objects, e, "p", "other-env"),
            (std::vector<std::string>{"container.container/api"}));
  ASSERT_TRUE(ParseEvent(kVolumeRemove, &e));
  EXPECT_EQ(AddressesFor(objects, e, "p", "e"),
            (std::vector<std::string>{"container.kube/app", "container.volume/data"}));
  EngineEvent untag;
  untag.type = "image";
  untag.action = "untag";
  untag.id = "abc";
  untag.name = "localhost/zz:1";
  EXPECT_EQ(AddressesFor(objects, untag, "p", "e"),
            (std::vector<std::string>{"container.image/bb"}))
      << "by the recorded id";
}

TEST(Kube, PlayDocumentsAreLabelledAndClaimsLeftOut) {
  Value docs = Json(R"([{"kind": "ConfigMap", "metadata": {"name": "c"}},
      {"kind": "PersistentVolumeClaim", "metadata": {"name": "d"}},
      {"kind": "Deployment", "metadata": {"name": "w"},
       "spec": {"template": {"spec": {"containers": []}}}},
      {"kind": "Pod", "metadata": {"name": "p", "labels": {"app": "x"}}, "spec": {}}])");
  const std::string out = PlayDocuments(docs, Markers());
  EXPECT_EQ(out.find("PersistentVolumeClaim"), std::string::npos);
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t sep = out.find("\n---\n", start);
    parts.push_back(out.substr(start, sep == std::string::npos ? sep : sep - start));
    if (sep == std::string::npos) break;
    start = sep + 5;
  }
  ASSERT_EQ(parts.size(), 3u);
  Value deployment = Json(parts[1]);
  EXPECT_EQ(deployment.FindPath("spec.template.metadata.labels")->as_object().size(), 3u);
  Value pod = Json(parts[2]);
  EXPECT_EQ(pod.FindPath("metadata.labels")->as_object().size(), 4u);
  EXPECT_EQ(Json(parts[0]).FindPath("metadata.labels"), nullptr) << "a ConfigMap is as written";
}

TEST(Kube, LivePodsFromTheContainerList) {
  // GET /v4.0.0/libpod/containers/json of a deployment's pods (trimmed); ImageID has no sha256:.
  Value list = Json(R"([{"Names": ["w-pod-0-srv"], "PodName": "w-pod-0", "Image": "localhost/bb:2",
       "ImageID": "58c81e0683e5", "State": "running"},
      {"Names": ["w-pod-1-srv"], "PodName": "w-pod-1", "Image": "localhost/bb:2",
       "ImageID": "0000", "State": "exited"},
      {"Names": ["loose"], "PodName": "", "Image": "x", "State": "running"}])");
  Value declared = Json(R"({"w-pod-0": {"srv": {"image": "localhost/bb:2", "state": "running"}}})");
  Value live = LivePods(list, declared, {{"localhost/bb:2", "58c81e0683e5"}});
  EXPECT_EQ(value::ToJson(live),
            R"({"w-pod-0":{"srv":{"image":"localhost/bb:2","state":"running"}},)"
            R"("w-pod-1":{"srv":{"image":"localhost/bb:2","state":"stopped"}}})");
}

}  // namespace
}  // namespace driftless::providers::container
