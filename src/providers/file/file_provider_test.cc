#include "providers/file/file_provider.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "base/hash.h"
#include "providers/file/confined_fs.h"
#include "providers/file/file_target.h"
#include "support/shell.h"
#include "value/value.h"

namespace driftless::providers::file {
namespace {

namespace fs = std::filesystem;
using provider::FieldError;
using provider::ResourceRequest;
using value::Value;

// What Read reports: everything a write reports but the record of the folders it made.
Value WithoutParents(Value v) {
  v.Erase("parents_created");
  return v;
}

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

void Spit(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

struct stat Lstat(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(lstat(path.c_str(), &st), 0) << path;
  return st;
}

bool Exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

unsigned ModeOf(const std::string& path) { return Lstat(path).st_mode & 07777; }

// Every name under `dir` that looks like one of the provider's temporary files.
std::vector<std::string> TempFiles(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.path().filename().string().find(".driftless-") != std::string::npos) {
      out.push_back(e.path().string());
    }
  }
  return out;
}

// A fresh folder with `root/` (the target root, not yet created) and `outside/` beside it.
// The parameter turns the openat2 fast path on or off.
class FileProviderTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    SetFastLookupForTesting(GetParam());
    char tmpl[] = "/tmp/driftless-file-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    root_ = base_ + "/root";
    outside_ = base_ + "/outside";
    fs::create_directory(outside_);
    Spit(outside_ + "/secret", "outside\n");
    provider_ = NewFileProvider();
    auto target = provider_->Configure("host", Json(R"({"root":")" + root_ + R"("})"));
    ASSERT_TRUE(target.ok()) << target.error().message;
    target_ = std::move(target).value();
  }

  void TearDown() override {
    SetFastLookupForTesting(true);
    std::error_code ec;
    fs::remove_all(base_, ec);
  }

  // Normalizes a spec that must be valid.
  Value Norm(const std::string& kind, const std::string& spec_json,
             const provider::ReadRepoFile& read_file = nullptr) {
    std::vector<FieldError> errors;
    auto v = target_->Normalize(kind, Json(spec_json), read_file, errors);
    EXPECT_TRUE(errors.empty()) << errors[0].field << ": " << errors[0].message;
    EXPECT_TRUE(v.ok()) << (v.ok() ? "" : v.error().message);
    return v.ok() ? *v : Value();
  }

  // Normalizes a spec that must be refused; returns its errors.
  std::vector<FieldError> NormErrors(const std::string& kind, const std::string& spec_json,
                                     const provider::ReadRepoFile& read_file = nullptr) {
    std::vector<FieldError> errors;
    auto v = target_->Normalize(kind, Json(spec_json), read_file, errors);
    EXPECT_FALSE(v.ok());
    EXPECT_FALSE(errors.empty());
    return errors;
  }

  ResourceRequest Req(const std::string& kind, const Value& spec) {
    return ResourceRequest{kind, "r", spec};
  }

  Result<Value> Create(const std::string& kind, const Value& spec, bool adopt = false) {
    return target_->Create(Req(kind, spec), adopt);
  }
  Result<Value> Update(const std::string& kind, const Value& spec) {
    return target_->Update(Req(kind, spec), spec);
  }
  Result<Value> Update(const std::string& kind, const Value& spec, const Value& prior) {
    return target_->Update(Req(kind, spec), prior);
  }
  Result<std::optional<Value>> Read(const std::string& kind, const Value& spec) {
    return target_->Read(Req(kind, spec));
  }
  Status Delete(const std::string& kind, const Value& spec) {
    return target_->Delete(Req(kind, spec));
  }

  // The live attributes, which must exist.
  Value MustRead(const std::string& kind, const Value& spec) {
    auto r = Read(kind, spec);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    if (!r.ok() || !r->has_value()) {
      ADD_FAILURE() << "nothing at " << ToJson(spec);
      return Value();
    }
    return **r;
  }

  // Whether `live` has every field of the normalised `desired` with the same value.
  static void ExpectMatches(const Value& desired, const Value& live) {
    for (const auto& [key, v] : desired.as_object()) {
      const Value* got = live.Find(key);
      ASSERT_NE(got, nullptr) << key << " missing from " << ToJson(live);
      EXPECT_EQ(*got, v) << key << ": " << ToJson(live);
    }
  }

  std::string base_, root_, outside_;
  std::unique_ptr<provider::Provider> provider_;
  std::unique_ptr<provider::Target> target_;
};

INSTANTIATE_TEST_SUITE_P(Lookup, FileProviderTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "openat2" : "walk"; });

TEST(FileProvider, NameSchemasAndSettings) {
  auto p = NewFileProvider();
  EXPECT_EQ(p->Name(), "file");
  auto schemas = p->Schemas();
  ASSERT_EQ(schemas.size(), 3u);
  EXPECT_EQ(schemas[0].kind, "file.file");
  EXPECT_EQ(schemas[1].kind, "file.directory");
  EXPECT_EQ(schemas[2].kind, "file.symlink");
  for (const auto& s : schemas) {
    EXPECT_FALSE(s.description.empty());
    const auto* path = s.Find("path");
    ASSERT_NE(path, nullptr);
    EXPECT_TRUE(path->required);
    EXPECT_TRUE(path->force_new);
    ASSERT_NE(s.Find("name"), nullptr);
    EXPECT_FALSE(s.Find("name")->required);
    EXPECT_TRUE(s.Find("name")->write_only);
    ASSERT_NE(s.Find("type"), nullptr);
    EXPECT_FALSE(s.Find("type")->computed) << "compared with live, so not computed";
    for (const auto& f : s.fields) EXPECT_FALSE(f.description.empty()) << s.kind << f.name;
  }
  EXPECT_TRUE(schemas[0].Find("sha256")->computed);
  EXPECT_EQ(schemas[0].Find("size")->type, provider::FieldType::kInt);
  EXPECT_EQ(schemas[1].Find("purge")->type, provider::FieldType::kBool);
  EXPECT_EQ(schemas[1].Find("managed_children")->type, provider::FieldType::kList);
  EXPECT_TRUE(schemas[0].Find("source")->write_only);
  EXPECT_FALSE(schemas[0].Find("content")->write_only);
  EXPECT_TRUE(schemas[1].Find("purge")->write_only);
  EXPECT_TRUE(schemas[1].Find("managed_children")->write_only);
  EXPECT_FALSE(schemas[1].Find("unmanaged_children")->computed);
  EXPECT_TRUE(schemas[2].Find("target")->required);
  auto settings = p->TargetSchema();
  ASSERT_EQ(settings.size(), 1u);
  EXPECT_EQ(settings[0].name, "root");
  EXPECT_TRUE(settings[0].required);
}

TEST(FileProvider, ConfigureChecksRoot) {
  auto p = NewFileProvider();
  EXPECT_FALSE(p->Configure("t", Json("{}")).ok());
  EXPECT_FALSE(p->Configure("t", Json(R"({"root":"relative/dir"})")).ok());
  EXPECT_FALSE(p->Configure("t", Json(R"({"root":"/srv/../etc"})")).ok());
  EXPECT_FALSE(p->Configure("t", Json(R"({"root":5})")).ok());
  auto unknown = p->Configure("t", Json(R"({"root":"/srv/x","rot":"y"})"));
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("rot"), std::string::npos);
  auto ok = p->Configure("t", Json(R"({"root":"/srv//shop/production/"})"));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ((*ok)->Describe(), "file root /srv/shop/production");
}

TEST_P(FileProviderTest, NormalizeFile) {
  Value v = Norm("file.file", R"({"name":"motd","path":"etc/motd","content":"hi\n","mode":"644"})");
  EXPECT_EQ(v.Find("mode")->as_string(), "0644");
  EXPECT_EQ(v.Find("name")->as_string(), "motd");
  EXPECT_EQ(v.Find("type")->as_string(), "file");
  EXPECT_EQ(v.Find("size")->as_int(), 3);
  EXPECT_EQ(v.Find("sha256")->as_string(), Sha256Hex("hi\n"));
  EXPECT_EQ(
      Norm("file.file", R"({"path":"a","content":"","mode":"0600"})").Find("mode")->as_string(),
      "0600");
  EXPECT_EQ(
      Norm("file.file", R"({"path":"a","content":"","mode":"4755"})").Find("mode")->as_string(),
      "4755");
  EXPECT_EQ(Norm("file.file", R"({"path":"a","content":"","mode":"7"})").Find("mode")->as_string(),
            "0007");
  // name is optional
  EXPECT_EQ(Norm("file.file", R"({"path":"a","content":"x"})").Find("name"), nullptr);
  EXPECT_EQ(Norm("file.file", R"({"path":"a","content":"","mode":644})").Find("mode")->as_string(),
            "0644");
  for (const char* bad : {"\"8\"", "\"0o644\"", "\"u+rw\"", "\"10000\"", "\"\"", "420.5", "9"}) {
    auto errors =
        NormErrors("file.file", std::string(R"({"path":"a","content":"","mode":)") + bad + "}");
    ASSERT_EQ(errors.size(), 1u) << bad;
    EXPECT_EQ(errors[0].field, "mode");
  }
  auto both = NormErrors("file.file", R"({"path":"a","content":"x","source":"f"})");
  EXPECT_EQ(both[0].field, "source");
  auto neither = NormErrors("file.file", R"({"path":"a"})");
  EXPECT_EQ(neither[0].field, "content");
  auto unknown = NormErrors("file.file", R"({"path":"a","content":"x","contnet":"y"})");
  EXPECT_EQ(unknown[0].field, "contnet");
  auto missing_path = NormErrors("file.file", R"({"content":"x"})");
  EXPECT_EQ(missing_path[0].field, "path");
  auto wrong_type = NormErrors("file.file", R"({"path":"a","content":5})");
  EXPECT_EQ(wrong_type[0].field, "content");
  EXPECT_EQ(
      Norm("file.file", R"({"path":"a","content":"","type":"file"})").Find("type")->as_string(),
      "file");
  EXPECT_EQ(NormErrors("file.file", R"({"path":"a","content":"","type":"directory"})")[0].field,
            "type");
}

TEST_P(FileProviderTest, NormalizeOwnersToNames) {
  Value v = Norm("file.file", R"({"path":"a","content":"x","owner":"0","group":0})");
  EXPECT_EQ(v.Find("owner")->as_string(), "root");
  EXPECT_EQ(v.Find("group")->as_string(), "root");
  v = Norm("file.file", R"({"path":"a","content":"x","owner":"root","group":"root"})");
  EXPECT_EQ(v.Find("owner")->as_string(), "root");
  EXPECT_EQ(v.Find("group")->as_string(), "root");
  v = Norm("file.file", R"({"path":"a","content":"x","owner":"nobody","group":"4000000"})");
  EXPECT_EQ(v.Find("owner")->as_string(), "nobody");
  EXPECT_EQ(v.Find("group")->as_string(), "4000000");
  auto errors = NormErrors("file.file", R"({"path":"a","content":"x","owner":""})");
  EXPECT_EQ(errors[0].field, "owner");
}

TEST_P(FileProviderTest, NormalizeSourceThroughCallback) {
  std::vector<std::string> asked;
  provider::ReadRepoFile reader = [&](const std::string& path) -> Result<std::string> {
    asked.push_back(path);
    if (path == "files/app.conf") return std::string("port = 80\n");
    return MakeError("no such file in the repository");
  };
  Value v = Norm("file.file", R"({"path":"etc/app.conf","source":"files/app.conf"})", reader);
  EXPECT_EQ(asked, std::vector<std::string>{"files/app.conf"});
  EXPECT_EQ(v.Find("content")->as_string(), "port = 80\n");
  EXPECT_EQ(v.Find("source")->as_string(), "files/app.conf");
  EXPECT_EQ(v.Find("sha256")->as_string(), Sha256Hex("port = 80\n"));
  auto errors = NormErrors("file.file", R"({"path":"a","source":"files/missing"})", reader);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].field, "source");
  EXPECT_NE(errors[0].message.find("no such file in the repository"), std::string::npos);
  EXPECT_EQ(NormErrors("file.file", R"({"path":"a","source":"f"})")[0].field, "source");

  auto created = Create("file.file", v);
  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_EQ(Slurp(root_ + "/etc/app.conf"), "port = 80\n");
  EXPECT_EQ(created->Find("source")->as_string(), "files/app.conf");
  ExpectMatches(v, MustRead("file.file", v));
}

TEST_P(FileProviderTest, NormalizeRefusesPathsOutsideTheRoot) {
  struct Case {
    const char* path;
    const char* message;
  };
  std::string escapes = "path \"../etc/passwd\" escapes the target root " + root_;
  std::vector<Case> cases = {
      {"/etc/passwd", "is absolute"},
      {"../etc/passwd", escapes.c_str()},
      {"a/../../x", "escapes the target root"},
      {"a/../b", "\"..\" segment"},
      {"a//b", "empty segment"},
      {"a/", "ends with"},
      {"./a", "\".\" segment"},
      {"", "empty"},
  };
  for (const char* kind : {"file.file", "file.directory", "file.symlink"}) {
    for (const Case& c : cases) {
      Value spec = Json(R"({"content":"x","target":"t"})");
      if (std::string(kind) != "file.file") spec.Erase("content");
      if (std::string(kind) != "file.symlink") spec.Erase("target");
      spec.Set("path", Value::String(c.path));
      std::vector<FieldError> errors;
      auto v = target_->Normalize(kind, spec, nullptr, errors);
      EXPECT_FALSE(v.ok()) << kind << " " << c.path;
      ASSERT_EQ(errors.size(), 1u) << kind << " " << c.path;
      EXPECT_EQ(errors[0].field, "path");
      EXPECT_NE(errors[0].message.find(c.message), std::string::npos)
          << c.path << ": " << errors[0].message;
    }
  }
  Value nul = Json(R"({"content":"x"})");
  nul.Set("path", Value::String(std::string("a\0b", 3)));
  std::vector<FieldError> errors;
  EXPECT_FALSE(target_->Normalize("file.file", nul, nullptr, errors).ok());
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message.find("NUL"), std::string::npos);
}

TEST_P(FileProviderTest, NormalizeDirectoryAndSymlink) {
  Value d = Norm("file.directory",
                 R"({"path":"d","mode":"750","purge":true,"managed_children":["b","a/x","b"]})");
  EXPECT_EQ(d.Find("mode")->as_string(), "0750");
  EXPECT_EQ(ToJson(*d.Find("managed_children")), R"(["a/x","b"])");
  EXPECT_EQ(ToJson(*d.Find("unmanaged_children")), "[]");
  EXPECT_EQ(d.Find("type")->as_string(), "directory");
  EXPECT_EQ(Norm("file.directory", R"({"path":"d"})").Find("unmanaged_children"), nullptr);
  auto bad_child = NormErrors("file.directory", R"({"path":"d","managed_children":["../x"]})");
  EXPECT_EQ(bad_child[0].field, "managed_children.0");
  EXPECT_EQ(NormErrors("file.directory", R"({"path":"d","purge":"yes"})")[0].field, "purge");
  EXPECT_EQ(
      NormErrors("file.directory", R"({"path":"d","purge":true,"unmanaged_children":[]})")[0].field,
      "unmanaged_children");
  Value s = Norm("file.symlink", R"({"path":"l","target":"/anywhere/at/all"})");
  EXPECT_EQ(s.Find("target")->as_string(), "/anywhere/at/all");
  EXPECT_EQ(s.Find("type")->as_string(), "symlink");
  EXPECT_EQ(NormErrors("file.symlink", R"({"path":"l"})")[0].field, "target");
  EXPECT_EQ(NormErrors("file.symlink", R"({"path":"l","target":""})")[0].field, "target");
  std::vector<FieldError> errors;
  EXPECT_FALSE(target_->Normalize("file.socket", Json("{}"), nullptr, errors).ok());
}

TEST_P(FileProviderTest, FileCreateReadUpdateDelete) {
  ASSERT_FALSE(Exists(root_));
  Value spec = Norm("file.file", R"({"path":"etc/app/app.conf","content":"a=1\n"})");
  auto missing = Read("file.file", spec);
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());

  auto created = Create("file.file", spec);
  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_EQ(Slurp(root_ + "/etc/app/app.conf"), "a=1\n");
  EXPECT_EQ(ModeOf(root_ + "/etc/app/app.conf"), 0644u);
  EXPECT_EQ(ModeOf(root_ + "/etc"), 0755u);
  EXPECT_EQ(ModeOf(root_ + "/etc/app"), 0755u);
  EXPECT_EQ(created->Find("mode")->as_string(), "0644");
  EXPECT_EQ(created->Find("owner")->as_string(), "root");
  EXPECT_EQ(created->Find("group")->as_string(), "root");
  EXPECT_EQ(created->Find("size")->as_int(), 4);
  EXPECT_EQ(created->Find("parents_created")->as_list().size(), 2u);  // etc/app, then etc
  EXPECT_EQ(created->Find("parents_created")->as_list()[0].as_string(), "etc/app");
  Value live = MustRead("file.file", spec);
  EXPECT_EQ(live, WithoutParents(*created));
  ExpectMatches(spec, live);

  // New content: rewritten, mode kept.
  chmod((root_ + "/etc/app/app.conf").c_str(), 0600);
  Value changed = Norm("file.file", R"({"path":"etc/app/app.conf","content":"a=2\n"})");
  auto updated = Update("file.file", changed);
  ASSERT_TRUE(updated.ok()) << updated.error().message;
  EXPECT_EQ(Slurp(root_ + "/etc/app/app.conf"), "a=2\n");
  EXPECT_EQ(ModeOf(root_ + "/etc/app/app.conf"), 0600u);
  EXPECT_EQ(updated->Find("mode")->as_string(), "0600");
  EXPECT_EQ(MustRead("file.file", changed), WithoutParents(*updated));

  // Only the mode differs: chmod in place, no rewrite (same inode).
  ino_t inode = Lstat(root_ + "/etc/app/app.conf").st_ino;
  Value moded = Norm("file.file", R"({"path":"etc/app/app.conf","content":"a=2\n","mode":"640"})");
  auto chmodded = Update("file.file", moded);
  ASSERT_TRUE(chmodded.ok()) << chmodded.error().message;
  EXPECT_EQ(Lstat(root_ + "/etc/app/app.conf").st_ino, inode);
  EXPECT_EQ(ModeOf(root_ + "/etc/app/app.conf"), 0640u);
  ExpectMatches(moded, MustRead("file.file", moded));

  // Nothing differs: nothing is written.
  ASSERT_TRUE(Update("file.file", moded).ok());
  EXPECT_EQ(Lstat(root_ + "/etc/app/app.conf").st_ino, inode);

  ASSERT_TRUE(Delete("file.file", moded).ok());
  EXPECT_FALSE(Exists(root_ + "/etc/app/app.conf"));
  EXPECT_TRUE(Exists(root_ + "/etc/app"));  // folders are not deleted with the file
  ASSERT_TRUE(Delete("file.file", moded).ok()) << "deleting a missing file succeeds";
  auto gone = Read("file.file", moded);
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  EXPECT_TRUE(TempFiles(root_).empty());
}

TEST_P(FileProviderTest, NewParentsAndFilesIgnoreTheUmask) {
  mode_t old = umask(077);
  Value spec = Norm("file.file", R"({"path":"x/y/z.txt","content":"z","mode":"0664"})");
  auto created = Create("file.file", spec);
  Value dir = Norm("file.directory", R"({"path":"x/d"})");
  auto made = Create("file.directory", dir);
  umask(old);
  ASSERT_TRUE(created.ok()) << created.error().message;
  ASSERT_TRUE(made.ok()) << made.error().message;
  EXPECT_EQ(ModeOf(root_ + "/x"), 0755u);
  EXPECT_EQ(ModeOf(root_ + "/x/y"), 0755u);
  EXPECT_EQ(ModeOf(root_ + "/x/y/z.txt"), 0664u);
  EXPECT_EQ(ModeOf(root_ + "/x/d"), 0755u);
  EXPECT_EQ(made->Find("mode")->as_string(), "0755");
}

TEST_P(FileProviderTest, ExistingFileNeedsAdopt) {
  fs::create_directories(root_ + "/etc");
  Spit(root_ + "/etc/motd", "theirs\n");
  chown((root_ + "/etc/motd").c_str(), 65534, 65534);
  Value spec = Norm("file.file", R"({"path":"etc/motd","content":"ours\n"})");
  auto refused = Create("file.file", spec);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message,
            root_ + "/etc/motd already exists (set policy.adopt: true to take it over)");
  EXPECT_EQ(Slurp(root_ + "/etc/motd"), "theirs\n");
  EXPECT_TRUE(TempFiles(root_).empty());

  auto adopted = Create("file.file", spec, /*adopt=*/true);
  ASSERT_TRUE(adopted.ok()) << adopted.error().message;
  EXPECT_EQ(Slurp(root_ + "/etc/motd"), "ours\n");
  // Undeclared owner and group are kept across the rewrite.
  EXPECT_EQ(Lstat(root_ + "/etc/motd").st_uid, 65534u);
  EXPECT_EQ(adopted->Find("owner")->as_string(), "nobody");
  EXPECT_EQ(MustRead("file.file", spec), WithoutParents(*adopted));

  // Same for folders and symlinks.
  fs::create_directories(root_ + "/var/lib");
  Value dir = Norm("file.directory", R"({"path":"var/lib","mode":"0700"})");
  auto dir_refused = Create("file.directory", dir);
  ASSERT_FALSE(dir_refused.ok());
  EXPECT_NE(dir_refused.error().message.find("already exists (set policy.adopt: true"),
            std::string::npos);
  ASSERT_TRUE(Create("file.directory", dir, true).ok());
  EXPECT_EQ(ModeOf(root_ + "/var/lib"), 0700u);
  symlink("elsewhere", (root_ + "/current").c_str());
  Value link = Norm("file.symlink", R"({"path":"current","target":"releases/2"})");
  auto link_refused = Create("file.symlink", link);
  ASSERT_FALSE(link_refused.ok());
  EXPECT_NE(link_refused.error().message.find("already exists"), std::string::npos);
  EXPECT_EQ(fs::read_symlink(root_ + "/current").string(), "elsewhere");
  ASSERT_TRUE(Create("file.symlink", link, true).ok());
  EXPECT_EQ(fs::read_symlink(root_ + "/current").string(), "releases/2");
}

TEST_P(FileProviderTest, ReadShowsDrift) {
  Value spec = Norm("file.file", R"({"path":"f.txt","content":"one\n","mode":"0644"})");
  ASSERT_TRUE(Create("file.file", spec).ok());
  std::string f = root_ + "/f.txt";

  Spit(f, "two\n");
  Value live = MustRead("file.file", spec);
  EXPECT_EQ(live.Find("content")->as_string(), "two\n");
  EXPECT_EQ(live.Find("sha256")->as_string(), Sha256Hex("two\n"));
  EXPECT_NE(*live.Find("content"), *spec.Find("content"));

  chmod(f.c_str(), 0600);
  EXPECT_EQ(MustRead("file.file", spec).Find("mode")->as_string(), "0600");

  chown(f.c_str(), 65534, 65534);
  live = MustRead("file.file", spec);
  EXPECT_EQ(live.Find("owner")->as_string(), "nobody");
  EXPECT_EQ(live.Find("group")->as_string(), "nogroup");
  chown(f.c_str(), 4000001, 4000002);
  live = MustRead("file.file", spec);
  EXPECT_EQ(live.Find("owner")->as_string(), "4000001");
  EXPECT_EQ(live.Find("group")->as_string(), "4000002");

  fs::remove(f);
  auto r = Read("file.file", spec);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());

  // Something else at the path: its type, and no content.
  fs::create_directory(f);
  live = MustRead("file.file", spec);
  EXPECT_EQ(live.Find("type")->as_string(), "directory");
  EXPECT_EQ(live.Find("content"), nullptr);
  fs::remove(f);
  symlink((outside_ + "/secret").c_str(), f.c_str());
  live = MustRead("file.file", spec);
  EXPECT_EQ(live.Find("type")->as_string(), "symlink");
  EXPECT_EQ(live.Find("content"), nullptr) << "a symlink is never read through";

  // Update replaces the planted symlink itself; its target is untouched.
  ASSERT_TRUE(Update("file.file", spec).ok());
  EXPECT_EQ(Lstat(f).st_mode & S_IFMT, static_cast<mode_t>(S_IFREG));
  EXPECT_EQ(Slurp(f), "one\n");
  EXPECT_EQ(Slurp(outside_ + "/secret"), "outside\n");
  ExpectMatches(spec, MustRead("file.file", spec));

  // Deleted outright: Update makes it again.
  fs::remove(f);
  ASSERT_TRUE(Update("file.file", spec).ok());
  EXPECT_EQ(Slurp(f), "one\n");
}

TEST_P(FileProviderTest, Ownership) {
  Value spec = Norm("file.file",
                    R"({"path":"o.txt","content":"x","owner":"nobody","group":"nogroup",
                        "mode":"4755"})");
  auto created = Create("file.file", spec);
  ASSERT_TRUE(created.ok()) << created.error().message;
  struct stat st = Lstat(root_ + "/o.txt");
  EXPECT_EQ(st.st_uid, 65534u);
  EXPECT_EQ(st.st_gid, 65534u);
  EXPECT_EQ(st.st_mode & 07777, 04755u) << "chmod comes after chown, which clears set-user-ID";
  ExpectMatches(spec, *created);
  ExpectMatches(spec, MustRead("file.file", spec));

  // Owner back to root: chown in place (the set-user-ID bit survives since mode is declared).
  ino_t inode = st.st_ino;
  Value root_owned = Norm("file.file",
                          R"({"path":"o.txt","content":"x","owner":"root","group":"0",
                              "mode":"4755"})");
  auto updated = Update("file.file", root_owned);
  ASSERT_TRUE(updated.ok()) << updated.error().message;
  st = Lstat(root_ + "/o.txt");
  EXPECT_EQ(st.st_ino, inode);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_gid, 0u);
  EXPECT_EQ(st.st_mode & 07777, 04755u);
  ExpectMatches(root_owned, MustRead("file.file", root_owned));

  // A numeric id without a name is used as it is.
  Value numeric = Norm("file.file", R"({"path":"n.txt","content":"x","owner":"4000003"})");
  ASSERT_TRUE(Create("file.file", numeric).ok());
  EXPECT_EQ(Lstat(root_ + "/n.txt").st_uid, 4000003u);
  EXPECT_EQ(MustRead("file.file", numeric).Find("owner")->as_string(), "4000003");

  Value unknown = Norm("file.file", R"({"path":"u.txt","content":"x","owner":"no-such-user-dl"})");
  auto refused = Create("file.file", unknown);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("\"no-such-user-dl\" is not a user"), std::string::npos);
  EXPECT_FALSE(Exists(root_ + "/u.txt"));
  Value bad_group = Norm("file.directory", R"({"path":"dd","group":"no-such-group-dl"})");
  auto refused_dir = Create("file.directory", bad_group);
  ASSERT_FALSE(refused_dir.ok());
  EXPECT_NE(refused_dir.error().message.find("not a group"), std::string::npos);

  Value dir = Norm("file.directory", R"({"path":"owned","owner":"nobody","group":"nogroup"})");
  ASSERT_TRUE(Create("file.directory", dir).ok());
  EXPECT_EQ(Lstat(root_ + "/owned").st_uid, 65534u);
  ExpectMatches(dir, MustRead("file.directory", dir));
}

TEST_P(FileProviderTest, DirectoryCreateReadUpdateDelete) {
  Value spec = Norm("file.directory", R"({"path":"srv/data","mode":"0750"})");
  auto created = Create("file.directory", spec);
  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_TRUE(fs::is_directory(root_ + "/srv/data"));
  EXPECT_EQ(ModeOf(root_ + "/srv/data"), 0750u);
  EXPECT_EQ(MustRead("file.directory", spec), WithoutParents(*created));
  ExpectMatches(spec, *created);

  chmod((root_ + "/srv/data").c_str(), 0777);
  EXPECT_EQ(MustRead("file.directory", spec).Find("mode")->as_string(), "0777");
  ASSERT_TRUE(Update("file.directory", spec).ok());
  EXPECT_EQ(ModeOf(root_ + "/srv/data"), 0750u);

  // Something other than a folder at the path: drift in type; not replaced.
  Value other = Norm("file.directory", R"({"path":"plain"})");
  Spit(root_ + "/plain", "x");
  EXPECT_EQ(MustRead("file.directory", other).Find("type")->as_string(), "file");
  auto refused = Update("file.directory", other);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("not a directory"), std::string::npos);
  EXPECT_EQ(Slurp(root_ + "/plain"), "x");

  Spit(root_ + "/srv/data/file", "x");
  Status not_empty = Delete("file.directory", spec);
  ASSERT_FALSE(not_empty.ok());
  EXPECT_NE(not_empty.error().message.find("not empty"), std::string::npos);
  EXPECT_TRUE(Exists(root_ + "/srv/data/file"));
  fs::remove(root_ + "/srv/data/file");
  ASSERT_TRUE(Delete("file.directory", spec).ok());
  EXPECT_FALSE(Exists(root_ + "/srv/data"));
  ASSERT_TRUE(Delete("file.directory", spec).ok());
  auto gone = Read("file.directory", spec);
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());

  Status wrong = Delete("file.file", Norm("file.file", R"({"path":"srv","content":""})"));
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message.find("is a directory"), std::string::npos);
}

TEST_P(FileProviderTest, Purge) {
  std::string d = root_ + "/conf.d";
  fs::create_directories(d + "/sub");
  fs::create_directories(d + "/strays/deep");
  Spit(d + "/keep.conf", "k");
  Spit(d + "/stray.conf", "s");
  Spit(d + "/sub/inner.conf", "i");
  Spit(d + "/sub/stray", "s");
  Spit(d + "/strays/deep/x", "x");
  fs::create_directories(d + "/managed-dir/anything");
  Spit(d + "/managed-dir/anything/y", "y");
  symlink(outside_.c_str(), (d + "/out").c_str());

  Value spec = Norm("file.directory", R"({"path":"conf.d","purge":true,
      "managed_children":["keep.conf","sub/inner.conf","managed-dir","not-there-yet"]})");
  Value live = MustRead("file.directory", spec);
  EXPECT_EQ(ToJson(*live.Find("unmanaged_children")),
            R"(["out","stray.conf","strays","sub/stray"])");
  EXPECT_NE(live, spec);

  auto adopted = Create("file.directory", spec, /*adopt=*/true);
  ASSERT_TRUE(adopted.ok()) << adopted.error().message;
  EXPECT_TRUE(Exists(d + "/keep.conf"));
  EXPECT_TRUE(Exists(d + "/sub/inner.conf"));
  EXPECT_TRUE(Exists(d + "/managed-dir/anything/y"));
  EXPECT_FALSE(Exists(d + "/stray.conf"));
  EXPECT_FALSE(Exists(d + "/sub/stray"));
  EXPECT_FALSE(Exists(d + "/strays"));
  EXPECT_FALSE(Exists(d + "/out"));
  EXPECT_EQ(Slurp(outside_ + "/secret"), "outside\n") << "purge removes a link, not its target";
  live = MustRead("file.directory", spec);
  EXPECT_EQ(ToJson(*live.Find("unmanaged_children")), "[]");
  ExpectMatches(spec, live);

  // Without purge, strays are nobody's business.
  Spit(d + "/new-stray", "n");
  Value no_purge = Norm("file.directory", R"({"path":"conf.d"})");
  EXPECT_EQ(MustRead("file.directory", no_purge).Find("unmanaged_children"), nullptr);
  ASSERT_TRUE(Update("file.directory", no_purge).ok());
  EXPECT_TRUE(Exists(d + "/new-stray"));
  ASSERT_TRUE(Update("file.directory", spec).ok());
  EXPECT_FALSE(Exists(d + "/new-stray"));

  // Many strays: the list is capped.
  for (int i = 0; i < 150; ++i) Spit(d + "/s" + std::to_string(1000 + i), "");
  live = MustRead("file.directory", spec);
  const auto& list = live.Find("unmanaged_children")->as_list();
  ASSERT_EQ(list.size(), 101u);
  EXPECT_EQ(list.back().as_string(), "... and 50 more");

  // Deleting a purged folder deletes its contents.
  ASSERT_TRUE(Delete("file.directory", spec).ok());
  EXPECT_FALSE(Exists(d));
  EXPECT_EQ(Slurp(outside_ + "/secret"), "outside\n");
}

TEST_P(FileProviderTest, DeleteRemovesTheFoldersItsWriteCreated) {
  fs::create_directories(root_ + "/pre");
  Value spec = Norm("file.file", R"({"path":"pre/new/deeper/f.txt","content":"x"})");
  auto created = Create("file.file", spec);
  ASSERT_TRUE(created.ok()) << created.error().message;
  // An update keeps the record of what the first write made.
  auto updated = Update("file.file", spec, *created);
  ASSERT_TRUE(updated.ok());
  ASSERT_NE(updated->Find("parents_created"), nullptr);
  ASSERT_TRUE(target_->Delete({"file.file", "f", *updated}).ok());
  EXPECT_FALSE(Exists(root_ + "/pre/new"));
  EXPECT_TRUE(Exists(root_ + "/pre"));  // existed before: kept
  // A folder that is not empty any more stays.
  auto again = Create("file.file", spec);
  ASSERT_TRUE(again.ok());
  std::ofstream(root_ + "/pre/new/other.txt") << "mine";
  ASSERT_TRUE(target_->Delete({"file.file", "f", *again}).ok());
  EXPECT_TRUE(Exists(root_ + "/pre/new/other.txt"));
  EXPECT_FALSE(Exists(root_ + "/pre/new/deeper"));
}

// A destroy deletes the files of a folder in any order: the folder one file's write created
// goes with the last file deleted from it, whichever that is.
TEST_P(FileProviderTest, TheLastDeleteInAFolderAnotherWriteCreatedRemovesIt) {
  Value first = Norm("file.file", R"({"path":"made/deeper/a.txt","content":"a"})");
  Value second = Norm("file.file", R"({"path":"made/deeper/b.txt","content":"b"})");
  Value third = Norm("file.file", R"({"path":"made/c.txt","content":"c"})");
  auto a = Create("file.file", first);
  auto b = Create("file.file", second);
  auto c = Create("file.file", third);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  ASSERT_NE(a->Find("parents_created"), nullptr);  // made/deeper, then made
  EXPECT_EQ(b->Find("parents_created"), nullptr);
  EXPECT_EQ(c->Find("parents_created"), nullptr);
  // The writer of both folders goes first: neither is empty yet.
  ASSERT_TRUE(target_->Delete({"file.file", "a", *a}).ok());
  EXPECT_TRUE(Exists(root_ + "/made/deeper"));
  ASSERT_TRUE(target_->Delete({"file.file", "b", *b}).ok());
  EXPECT_FALSE(Exists(root_ + "/made/deeper"));
  EXPECT_TRUE(Exists(root_ + "/made/c.txt"));
  ASSERT_TRUE(target_->Delete({"file.file", "c", *c}).ok());
  EXPECT_FALSE(Exists(root_ + "/made"));
  EXPECT_TRUE(Exists(root_));
  // A folder driftless did not create stays, empty or not.
  fs::create_directories(root_ + "/mine");
  Value in_mine = Norm("file.file", R"({"path":"mine/x.txt","content":"x"})");
  auto x = Create("file.file", in_mine);
  ASSERT_TRUE(x.ok());
  ASSERT_TRUE(target_->Delete({"file.file", "x", *x}).ok());
  EXPECT_TRUE(Exists(root_ + "/mine"));
}

TEST_P(FileProviderTest, SymlinkCreateReadUpdateDelete) {
  Value spec = Norm("file.symlink", R"({"path":"bin/current","target":"../releases/1"})");
  auto created = Create("file.symlink", spec);
  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_EQ(fs::read_symlink(root_ + "/bin/current").string(), "../releases/1");
  EXPECT_EQ(MustRead("file.symlink", spec), WithoutParents(*created));
  ExpectMatches(spec, *created);

  Value moved = Norm("file.symlink", R"({"path":"bin/current","target":"/etc/ssl"})");
  auto updated = Update("file.symlink", moved);
  ASSERT_TRUE(updated.ok()) << updated.error().message;
  EXPECT_EQ(fs::read_symlink(root_ + "/bin/current").string(), "/etc/ssl");
  EXPECT_EQ(MustRead("file.symlink", moved).Find("target")->as_string(), "/etc/ssl");

  // Drift: changed by hand, replaced by a file.
  fs::remove(root_ + "/bin/current");
  symlink("x", (root_ + "/bin/current").c_str());
  EXPECT_EQ(MustRead("file.symlink", moved).Find("target")->as_string(), "x");
  fs::remove(root_ + "/bin/current");
  Spit(root_ + "/bin/current", "file");
  Value live = MustRead("file.symlink", moved);
  EXPECT_EQ(live.Find("type")->as_string(), "file");
  EXPECT_EQ(live.Find("target"), nullptr);
  ASSERT_TRUE(Update("file.symlink", moved).ok());
  EXPECT_EQ(fs::read_symlink(root_ + "/bin/current").string(), "/etc/ssl");

  ASSERT_TRUE(Delete("file.symlink", moved).ok());
  EXPECT_FALSE(Exists(root_ + "/bin/current"));
  EXPECT_TRUE(Exists("/etc/ssl"));
  ASSERT_TRUE(Delete("file.symlink", moved).ok());
  EXPECT_TRUE(TempFiles(root_).empty());
}

TEST_P(FileProviderTest, SymlinksInsideTheRootAreNeverFollowed) {
  fs::create_directories(root_ + "/a");
  symlink(outside_.c_str(), (root_ + "/link").c_str());
  symlink(outside_.c_str(), (root_ + "/a/link").c_str());
  auto outside_names = [&] {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(outside_)) {
      names.push_back(e.path().filename().string());
    }
    return names;
  };
  const std::vector<std::string> before = outside_names();

  for (const char* parent : {"link", "a/link"}) {
    std::string p = parent;
    std::string display = root_ + "/" + p;
    Value file = Norm("file.file", "{\"path\":\"" + p + "/secret\",\"content\":\"pwned\"}");
    for (bool adopt : {false, true}) {
      auto r = Create("file.file", file, adopt);
      ASSERT_FALSE(r.ok()) << p;
      EXPECT_NE(r.error().message.find(display + " is a symlink"), std::string::npos)
          << r.error().message;
    }
    auto u = Update("file.file", file);
    ASSERT_FALSE(u.ok());
    EXPECT_NE(u.error().message.find("symlink"), std::string::npos);
    auto read = Read("file.file", file);
    ASSERT_FALSE(read.ok()) << "reading through a symlink must not succeed";
    EXPECT_NE(read.error().message.find("symlink"), std::string::npos);
    Status del = Delete("file.file", file);
    ASSERT_FALSE(del.ok());

    Value deeper = Norm("file.file", "{\"path\":\"" + p + "/new/x\",\"content\":\"pwned\"}");
    EXPECT_FALSE(Create("file.file", deeper).ok());
    Value dir = Norm("file.directory", "{\"path\":\"" + p + "/d\",\"purge\":true}");
    EXPECT_FALSE(Create("file.directory", dir).ok());
    EXPECT_FALSE(Update("file.directory", dir).ok());
    EXPECT_FALSE(Delete("file.directory", dir).ok());
    Value link = Norm("file.symlink", "{\"path\":\"" + p + "/l\",\"target\":\"/\"}");
    EXPECT_FALSE(Create("file.symlink", link).ok());
    EXPECT_FALSE(Delete("file.symlink", link).ok());
  }
  // A folder resource that is itself the symlink: not purged through, not chmod'ed through.
  Value dir = Norm("file.directory", R"({"path":"link","purge":true,"mode":"0700"})");
  EXPECT_FALSE(Update("file.directory", dir).ok());
  EXPECT_EQ(MustRead("file.directory", dir).Find("type")->as_string(), "symlink");

  EXPECT_EQ(outside_names(), before);
  EXPECT_EQ(Slurp(outside_ + "/secret"), "outside\n");
  EXPECT_NE(ModeOf(outside_), 0700u);

  // Paths that were never normalised are checked again at I/O time.
  for (const char* bad : {"../outside/secret", "/etc/passwd", "a/../../outside/secret"}) {
    Value spec = Json(R"({"content":"pwned"})");
    spec.Set("path", Value::String(bad));
    EXPECT_FALSE(Create("file.file", spec, true).ok()) << bad;
    EXPECT_FALSE(Update("file.file", spec).ok()) << bad;
    EXPECT_FALSE(Read("file.file", spec).ok()) << bad;
    EXPECT_FALSE(Delete("file.file", spec).ok()) << bad;
  }
  EXPECT_EQ(Slurp(outside_ + "/secret"), "outside\n");
}

TEST_P(FileProviderTest, HardLinkedFilesAreNotChangedInPlace) {
  fs::create_directories(root_);
  chmod((outside_ + "/secret").c_str(), 0644);
  ASSERT_EQ(link((outside_ + "/secret").c_str(), (root_ + "/hl").c_str()), 0);
  Value spec =
      Norm("file.file", R"({"path":"hl","content":"outside\n","mode":"0600","owner":"nobody"})");
  ASSERT_TRUE(Create("file.file", spec, /*adopt=*/true).ok());
  EXPECT_EQ(ModeOf(root_ + "/hl"), 0600u);
  EXPECT_EQ(Lstat(root_ + "/hl").st_uid, 65534u);
  EXPECT_EQ(ModeOf(outside_ + "/secret"), 0644u);
  EXPECT_EQ(Lstat(outside_ + "/secret").st_uid, 0u);
  EXPECT_NE(Lstat(outside_ + "/secret").st_ino, Lstat(root_ + "/hl").st_ino);
}

TEST_P(FileProviderTest, MissingRootReadsAsEmptyAndIsCreatedOnWrite) {
  Value spec = Norm("file.file", R"({"path":"f","content":"x"})");
  auto r = Read("file.file", spec);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  ASSERT_TRUE(Delete("file.file", spec).ok());
  ASSERT_TRUE(Create("file.file", spec).ok());
  EXPECT_EQ(Slurp(root_ + "/f"), "x");

  // The root replaced by another folder is seen (after at most a second of reuse).
  fs::rename(root_, base_ + "/old-root");
  fs::create_directory(root_);
  ASSERT_TRUE(Create("file.file", spec).ok()) << "a write opens the root afresh";
  Spit(root_ + "/f", "new");
  EXPECT_EQ(MustRead("file.file", spec).Find("content")->as_string(), "new");
}

TEST_P(FileProviderTest, SensitiveContentStaysSensitive) {
  Value spec = Json(R"({"path":"secret.env","content":"TOKEN=hunter2\n"})");
  spec.Find("content")->set_sensitive(true);
  std::vector<FieldError> errors;
  auto v = target_->Normalize("file.file", spec, nullptr, errors);
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->Find("content")->sensitive());
  EXPECT_TRUE(v->Find("sha256")->sensitive());
  auto created = Create("file.file", *v);
  ASSERT_TRUE(created.ok());
  EXPECT_TRUE(created->Find("content")->sensitive());
  Value live = MustRead("file.file", *v);
  EXPECT_TRUE(live.Find("content")->sensitive());
  EXPECT_TRUE(live.Find("sha256")->sensitive());
}

TEST_P(FileProviderTest, ManyFilesFromManyThreads) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 100;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string n = std::to_string(t) + "/" + std::to_string(i);
        Value spec = Json("{\"path\":\"many/" + n + ".txt\",\"content\":\"" + n + "\"}");
        auto c = Create("file.file", spec);
        auto r = Read("file.file", spec);
        if (!c.ok() || !r.ok() || !r->has_value() || (**r).Find("content")->as_string() != n) {
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_TRUE(TempFiles(root_).empty());
}

TEST_P(FileProviderTest, NoTemporaryFilesAfterFailures) {
  fs::create_directories(root_ + "/d/sub");
  Value over_dir = Norm("file.file", R"({"path":"d/sub","content":"x"})");
  EXPECT_FALSE(Create("file.file", over_dir).ok());
  EXPECT_FALSE(Create("file.file", over_dir, true).ok());
  EXPECT_FALSE(Update("file.file", over_dir).ok());
  Value link_over_dir = Norm("file.symlink", R"({"path":"d/sub","target":"x"})");
  EXPECT_FALSE(Update("file.symlink", link_over_dir).ok());
  Spit(root_ + "/d/blocker", "x");
  Value under_file = Norm("file.file", R"({"path":"d/blocker/x","content":"x"})");
  auto r = Create("file.file", under_file);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not a folder"), std::string::npos) << r.error().message;
  EXPECT_TRUE(TempFiles(root_).empty());
  EXPECT_TRUE(fs::is_directory(root_ + "/d/sub"));
}

TEST_P(FileProviderTest, ReadByIdImportsWhatIsThereAsTheDeclarationNamesIt) {
  fs::create_directories(root_ + "/etc");
  Spit(root_ + "/etc/motd", "hello\n");
  const Value spec = Norm("file.file", R"({"path":"etc/motd","content":"other\n"})");
  Result<std::optional<Value>> live = target_->ReadById("etc/motd", Req("file.file", spec));
  ASSERT_TRUE(live.ok()) << live.error().message;
  ASSERT_TRUE(live->has_value());
  EXPECT_EQ((*live)->Find("content")->as_string(), "hello\n") << "what is there, not declared";
  EXPECT_EQ(Slurp(root_ + "/etc/motd"), "hello\n");

  // Another path than declared, a path outside the root, something of another type, nothing.
  Result<std::optional<Value>> other = target_->ReadById("etc", Req("file.file", spec));
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.error().message.find("path \"etc\" (declared: \"etc/motd\")"), std::string::npos)
      << other.error().message;
  EXPECT_NE(other.error().message.find("import ID \"etc/motd\""), std::string::npos);
  Result<std::optional<Value>> outside =
      target_->ReadById("../outside/secret", Req("file.file", spec));
  ASSERT_FALSE(outside.ok());
  EXPECT_NE(outside.error().message.find("is not a path of file root"), std::string::npos)
      << outside.error().message;
  const Value dir_as_file = Norm("file.file", R"({"path":"etc","content":"x"})");
  Result<std::optional<Value>> type = target_->ReadById("etc", Req("file.file", dir_as_file));
  ASSERT_FALSE(type.ok());
  EXPECT_NE(type.error().message.find("is a directory, not a file"), std::string::npos)
      << type.error().message;
  const Value absent = Norm("file.directory", R"({"path":"nothing"})");
  Result<std::optional<Value>> none = target_->ReadById("nothing", Req("file.directory", absent));
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_FALSE(none->has_value());
}

int64_t NowNs() {
  struct timespec t {};
  clock_gettime(CLOCK_REALTIME, &t);
  return int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec;
}

// Waits (polling the clock, up to a minute) until the file's stamp can be trusted: its last
// change lies outside the racy window.
void WaitUntilSettled(const std::string& path) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  while (!StampSettled(Lstat(path), NowNs()) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(StampSettled(Lstat(path), NowNs())) << path;
}

// Whether the provider keeps stamps for files on the file system of `path`.
bool StampsOn(const std::string& path) {
  struct statfs fs {};
  return statfs(path.c_str(), &fs) == 0 && IsLocalFileSystem(static_cast<long>(fs.f_type));
}

TEST(StampSettled, GitsRacyRule) {
  const int64_t now = 1'800'000'000'123'456'789;
  auto at = [](int64_t mtime, int64_t ctime) {
    struct stat st {};
    st.st_mtim = {static_cast<time_t>(mtime / 1'000'000'000), mtime % 1'000'000'000};
    st.st_ctim = {static_cast<time_t>(ctime / 1'000'000'000), ctime % 1'000'000'000};
    return st;
  };
  const int64_t ms = 1'000'000;
  EXPECT_FALSE(StampSettled(at(now - 10 * ms, now - 10 * ms), now));  // changed just now
  EXPECT_TRUE(StampSettled(at(now - 100 * ms, now - 100 * ms), now));
  EXPECT_FALSE(StampSettled(at(now - 100 * ms, now - 10 * ms), now));        // ctime counts
  EXPECT_FALSE(StampSettled(at(now + 3600'000 * ms, now - 100 * ms), now));  // mtime set ahead
  // Times in whole seconds: a file system that may round a later change down to the same second.
  const int64_t second = (now / 1'000'000'000) * 1'000'000'000;
  EXPECT_FALSE(StampSettled(at(second - 1000 * ms, second - 1000 * ms), now));
  EXPECT_TRUE(StampSettled(at(second - 3000 * ms, second - 3000 * ms), now));
}

TEST_P(FileProviderTest, StampSkipsOnlyTheReadOfAnUnchangedFile) {
  Value spec = Norm("file.file", R"({"path":"d/f","content":"aaaa\n","mode":"0644"})");
  ASSERT_TRUE(Create("file.file", spec).ok());
  const std::string path = root_ + "/d/f";
  const ResourceRequest req{"file.file", "f", spec};
  auto read = [&](const std::string& stamp) {
    auto r = target_->ReadIfChanged(req, stamp);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? std::move(*r) : provider::StampedRead{};
  };
  // Right after the write the file is racy: a stamp taken now could miss a change made within
  // the same tick of the kernel's clock, so none is given until its last change is old enough.
  WaitUntilSettled(path);
  provider::StampedRead first = read("");
  ASSERT_FALSE(first.unchanged);  // "" never matches
  ASSERT_TRUE(first.live.has_value());
  EXPECT_EQ(WithoutParents(*first.live), MustRead("file.file", spec));
  if (!StampsOn(base_)) {
    EXPECT_EQ(first.stamp, "") << "no stamps on a file system whose times are not this host's";
    return;
  }
  ASSERT_NE(first.stamp, "");
  EXPECT_TRUE(read(first.stamp).unchanged);

  // The same size and the modification time put back: the change time differs.
  struct stat before = Lstat(path);
  Spit(path, "bbbb\n");
  struct timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  ASSERT_EQ(Lstat(path).st_size, before.st_size);
  provider::StampedRead edited = read(first.stamp);
  ASSERT_FALSE(edited.unchanged);
  ASSERT_TRUE(edited.live.has_value());
  EXPECT_EQ((*edited.live).Find("content")->as_string(), "bbbb\n");

  // A mode changed.
  WaitUntilSettled(path);
  provider::StampedRead settled = read("");
  ASSERT_NE(settled.stamp, "");
  ASSERT_EQ(chmod(path.c_str(), 0600), 0);
  provider::StampedRead moded = read(settled.stamp);
  ASSERT_FALSE(moded.unchanged);
  ASSERT_TRUE(moded.live.has_value());
  EXPECT_EQ((*moded.live).Find("mode")->as_string(), "0600");

  // Replaced by another file with the same bytes, mode and times: another inode.
  WaitUntilSettled(path);
  settled = read("");
  Spit(root_ + "/d/g", "bbbb\n");
  ASSERT_EQ(chmod((root_ + "/d/g").c_str(), 0600), 0);
  struct stat now = Lstat(path);
  struct timespec same[2] = {now.st_atim, now.st_mtim};
  ASSERT_EQ(utimensat(AT_FDCWD, (root_ + "/d/g").c_str(), same, 0), 0);
  ASSERT_EQ(rename((root_ + "/d/g").c_str(), path.c_str()), 0);
  provider::StampedRead replaced = read(settled.stamp);
  ASSERT_FALSE(replaced.unchanged);
  ASSERT_TRUE(replaced.live.has_value());
  EXPECT_EQ((*replaced.live).Find("content")->as_string(), "bbbb\n");

  // Gone, or something else at the path: read, no stamp.
  ASSERT_EQ(unlink(path.c_str()), 0);
  provider::StampedRead gone = read(settled.stamp);
  EXPECT_FALSE(gone.unchanged);
  EXPECT_FALSE(gone.live.has_value());
  ASSERT_EQ(symlink("elsewhere", path.c_str()), 0);
  provider::StampedRead link = read(settled.stamp);
  EXPECT_FALSE(link.unchanged);
  ASSERT_TRUE(link.live.has_value());
  EXPECT_EQ((*link.live).Find("type")->as_string(), "symlink");
  EXPECT_EQ(link.stamp, "");
}

TEST_P(FileProviderTest, AReadRightAfterTheWriteThatMadeTheRootSeesTheFile) {
  Value spec = Norm("file.file", R"({"path":"d/f","content":"aaaa\n","mode":"0644"})");
  const ResourceRequest req{"file.file", "f", spec};
  // The root does not exist yet: a read remembers that (for up to a second).
  ASSERT_FALSE(fs::exists(root_));
  auto none = target_->Read(req);
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_FALSE(none->has_value());
  // The write makes the root; reads at once after it must not trust what they remembered.
  ASSERT_TRUE(Create("file.file", spec).ok());
  auto read = target_->Read(req);
  ASSERT_TRUE(read.ok()) << read.error().message;
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ((**read).Find("content")->as_string(), "aaaa\n");
  auto stamped = target_->ReadIfChanged(req, "");
  ASSERT_TRUE(stamped.ok()) << stamped.error().message;
  ASSERT_TRUE(stamped->live.has_value());
}

TEST_P(FileProviderTest, AStampIsNeverMatchedThroughASymlinkedFolder) {
  Value spec = Norm("file.file", R"({"path":"d/f","content":"aaaa\n","mode":"0644"})");
  ASSERT_TRUE(Create("file.file", spec).ok());
  WaitUntilSettled(root_ + "/d/f");
  const ResourceRequest req{"file.file", "f", spec};
  auto first = target_->ReadIfChanged(req, "");
  ASSERT_TRUE(first.ok()) << first.error().message;
  if (!StampsOn(base_)) return;
  ASSERT_NE(first->stamp, "");
  // The folder moved away and a symlink put in its place: the same file, with the same stamp, is
  // reached only through the symlink, which driftless never follows.
  ASSERT_EQ(rename((root_ + "/d").c_str(), (root_ + "/real").c_str()), 0);
  ASSERT_EQ(symlink("real", (root_ + "/d").c_str()), 0);
  auto through = target_->ReadIfChanged(req, first->stamp);
  ASSERT_FALSE(through.ok() && through->unchanged);
  ASSERT_FALSE(through.ok());
  EXPECT_NE(through.error().message.find("symlink"), std::string::npos) << through.error().message;
}

// Inside a plan's reads (a provider::ReadScope, as the planner opens one on each of its threads),
// the stamp checks resolve each folder once and keep it open until the scope ends.
TEST_P(FileProviderTest, StampChecksOfAPlanResolveEachFolderOnceAndCloseThemAtItsEnd) {
  std::vector<std::string> paths = {"top", "a/f1", "a/f2", "a/f3", "b/c/f1", "b/c/f2"};
  std::vector<ResourceRequest> reqs;
  for (const std::string& p : paths) {
    Value spec = Norm("file.file", R"({"path":")" + p + R"(","content":")" + p + R"(\n"})");
    ASSERT_TRUE(Create("file.file", spec).ok());
    reqs.push_back({"file.file", p, spec});
  }
  for (const std::string& p : paths) WaitUntilSettled(root_ + "/" + p);
  std::vector<std::string> stamps;
  for (const ResourceRequest& req : reqs) {
    auto r = target_->ReadIfChanged(req, "");
    ASSERT_TRUE(r.ok()) << r.error().message;
    stamps.push_back(r->stamp);
  }
  if (!StampsOn(base_)) return;
  const size_t before = test::OpenDescriptors();  // the target's root is open already
  {
    provider::ReadScope plan;
    for (int round = 0; round < 2; ++round) {
      for (size_t i = 0; i < reqs.size(); ++i) {
        auto r = target_->ReadIfChanged(reqs[i], stamps[i]);
        ASSERT_TRUE(r.ok()) << r.error().message;
        EXPECT_TRUE(r->unchanged) << paths[i];
      }
    }
    // "a" and "b/c" (the root's own files need none), each opened once for both rounds; the
    // portable walk (no openat2) keeps nothing.
    EXPECT_EQ(test::OpenDescriptors(), before + (GetParam() ? 2 : 0));
  }
  EXPECT_EQ(test::OpenDescriptors(), before);
  // Outside a scope nothing is kept.
  auto r = target_->ReadIfChanged(reqs[1], stamps[1]);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->unchanged);
  EXPECT_EQ(test::OpenDescriptors(), before);
}

TEST_P(FileProviderTest, APlanHoldsABoundedNumberOfFolders) {
  const size_t folders = DirStatCache::kMaxDirs * 2 + 3;
  std::vector<ResourceRequest> reqs;
  for (size_t i = 0; i < folders; ++i) {
    std::string p = "d" + std::to_string(i) + "/f";
    Value spec = Norm("file.file", R"({"path":")" + p + R"(","content":"x\n"})");
    ASSERT_TRUE(Create("file.file", spec).ok());
    reqs.push_back({"file.file", p, spec});
  }
  std::vector<std::string> stamps;
  for (const ResourceRequest& req : reqs) {
    WaitUntilSettled(root_ + "/" + req.spec.Find("path")->as_string());
    auto r = target_->ReadIfChanged(req, "");
    ASSERT_TRUE(r.ok()) << r.error().message;
    stamps.push_back(r->stamp);
  }
  if (!StampsOn(base_)) return;
  const size_t before = test::OpenDescriptors();
  {
    provider::ReadScope plan;
    size_t most = 0;
    for (size_t i = 0; i < reqs.size(); ++i) {
      auto r = target_->ReadIfChanged(reqs[i], stamps[i]);
      ASSERT_TRUE(r.ok()) << r.error().message;
      EXPECT_TRUE(r->unchanged) << i;
      most = std::max(most, test::OpenDescriptors() - before);
    }
    EXPECT_LE(most, DirStatCache::kMaxDirs);
    if (GetParam()) {
      EXPECT_GT(most, 0u);
    }
  }
  EXPECT_EQ(test::OpenDescriptors(), before);
}

TEST_P(FileProviderTest, AFolderSwappedForASymlinkBetweenPlansIsNeverFollowed) {
  Value spec = Norm("file.file", R"({"path":"d/f","content":"aaaa\n","mode":"0644"})");
  Value other = Norm("file.file", R"({"path":"d/g","content":"gggg\n","mode":"0644"})");
  ASSERT_TRUE(Create("file.file", spec).ok());
  ASSERT_TRUE(Create("file.file", other).ok());
  WaitUntilSettled(root_ + "/d/f");
  WaitUntilSettled(root_ + "/d/g");
  const ResourceRequest req{"file.file", "f", spec};
  const ResourceRequest req_g{"file.file", "g", other};
  auto first = target_->ReadIfChanged(req, "");
  auto first_g = target_->ReadIfChanged(req_g, "");
  ASSERT_TRUE(first.ok() && first_g.ok());
  if (!StampsOn(base_)) return;
  {
    provider::ReadScope plan;  // the folder is resolved and held here
    auto r = target_->ReadIfChanged(req, first->stamp);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_TRUE(r->unchanged);
  }
  // Between two plans the folder moves outside the root and a symlink to it takes its place:
  // the same files, with the same stamps, are reachable only through the symlink.
  ASSERT_EQ(rename((root_ + "/d").c_str(), (outside_ + "/d").c_str()), 0);
  ASSERT_EQ(symlink((outside_ + "/d").c_str(), (root_ + "/d").c_str()), 0);
  {
    provider::ReadScope plan;
    for (const auto* check : {&req, &req_g}) {
      auto through = target_->ReadIfChanged(*check, check == &req ? first->stamp : first_g->stamp);
      ASSERT_FALSE(through.ok() && through->unchanged) << check->name;
      ASSERT_FALSE(through.ok()) << check->name;
      EXPECT_NE(through.error().message.find("symlink"), std::string::npos)
          << through.error().message;
    }
  }
}

TEST_P(FileProviderTest, AFileSwappedForASymlinkInsideAPlanIsReportedNotFollowed) {
  Value spec = Norm("file.file", R"({"path":"d/f","content":"aaaa\n","mode":"0644"})");
  Value other = Norm("file.file", R"({"path":"d/g","content":"gggg\n","mode":"0644"})");
  ASSERT_TRUE(Create("file.file", spec).ok());
  ASSERT_TRUE(Create("file.file", other).ok());
  WaitUntilSettled(root_ + "/d/f");
  const ResourceRequest req{"file.file", "f", spec};
  const ResourceRequest req_g{"file.file", "g", other};
  auto first = target_->ReadIfChanged(req, "");
  ASSERT_TRUE(first.ok()) << first.error().message;
  if (!StampsOn(base_)) return;
  ASSERT_NE(first->stamp, "");
  provider::ReadScope plan;
  auto g = target_->ReadIfChanged(req_g, "");  // the folder is resolved and held now
  ASSERT_TRUE(g.ok()) << g.error().message;
  // The file is replaced by a symlink to the (same) file outside the root.
  ASSERT_EQ(rename((root_ + "/d/f").c_str(), (outside_ + "/f").c_str()), 0);
  ASSERT_EQ(symlink((outside_ + "/f").c_str(), (root_ + "/d/f").c_str()), 0);
  auto link = target_->ReadIfChanged(req, first->stamp);
  ASSERT_TRUE(link.ok()) << link.error().message;
  EXPECT_FALSE(link->unchanged);
  ASSERT_TRUE(link->live.has_value());
  EXPECT_EQ((*link->live).Find("type")->as_string(), "symlink");
  EXPECT_EQ(link->stamp, "");
}

TEST_P(FileProviderTest, OtherKindsAreReadEveryTime) {
  Value dir = Norm("file.directory", R"({"path":"d"})");
  ASSERT_TRUE(Create("file.directory", dir).ok());
  WaitUntilSettled(root_ + "/d");
  auto r = target_->ReadIfChanged({"file.directory", "d", dir}, "");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->unchanged);
  EXPECT_EQ(r->stamp, "");
  ASSERT_TRUE(r->live.has_value());
  EXPECT_EQ(*r->live, MustRead("file.directory", dir));
}

}  // namespace
}  // namespace driftless::providers::file
