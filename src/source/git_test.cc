// GitRepository against real repositories made with the git CLI in a temporary folder.
#include "source/git.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "base/file_util.h"
#include "base/hash.h"
#include "support/shell.h"

namespace driftless::source {
namespace {

namespace fs = std::filesystem;

using test::Sh;

std::vector<std::string> Names(const std::vector<BranchInfo>& branches) {
  std::vector<std::string> out;
  for (const auto& b : branches) out.push_back(b.name);
  return out;
}

std::vector<std::string> Ids(const std::vector<CommitInfo>& commits) {
  std::vector<std::string> out;
  for (const auto& c : commits) out.push_back(c.id);
  return out;
}

class GitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::GitTestDir("driftless-git-test");
    ASSERT_FALSE(dir_.empty());
    options_.cache_dir = dir_ + "/cache";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // `git -C repo ARGS` with a fixed identity and default branch.
  std::string Git(const std::string& repo, const std::string& args) {
    return Sh("git -C '" + repo + "' -c user.name=t -c user.email=t@e -c init.defaultBranch=main " +
              args);
  }
  // A new empty repository (working tree) named `name` in the temporary folder.
  std::string Init(const std::string& name) {
    std::string repo = dir_ + "/" + name;
    EXPECT_TRUE(MakeDirs(repo).ok());
    Git(repo, "init -q");
    return repo;
  }
  void Write(const std::string& path, const std::string& content) {
    ASSERT_TRUE(MakeDirs(fs::path(path).parent_path().string()).ok());
    std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
  }
  // Commits everything in the working tree; returns the new commit's id.
  std::string Commit(const std::string& repo, const std::string& message) {
    Git(repo, "add -A");
    Git(repo, "commit -q --allow-empty -m '" + message + "'");
    return Git(repo, "rev-parse HEAD");
  }
  std::unique_ptr<GitRepository> Open(const std::string& location) {
    Result<std::unique_ptr<GitRepository>> r = GitRepository::Open(location, options_);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? std::move(*r) : nullptr;
  }
  std::unique_ptr<Source> Snapshot(const GitRepository& repo, const std::string& revision) {
    Result<std::unique_ptr<Source>> s = repo.Snapshot(revision);
    EXPECT_TRUE(s.ok()) << s.error().message;
    return s.ok() ? std::move(*s) : nullptr;
  }

  std::string dir_;
  GitRepository::Options options_;
};

TEST_F(GitTest, OpensFromASubfolderOfAWorkTree) {
  std::string repo = Init("work");
  Write(repo + "/a/b/c.yaml", "x: 1\n");
  Commit(repo, "first");
  auto r = Open(repo + "/a/b");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->location(), repo + "/a/b");
  EXPECT_EQ(r->WorkTree(), repo);
  EXPECT_FALSE(r->is_mirror());
  EXPECT_EQ(r->CurrentBranch(), "main");
  EXPECT_TRUE(GitRepository::IsRepository(repo + "/a/b"));
  EXPECT_TRUE(GitRepository::IsRepository(repo));
  EXPECT_FALSE(GitRepository::IsRepository(dir_));
  EXPECT_FALSE(GitRepository::IsRepository(dir_ + "/nope"));
  // A plain folder is told without libgit2, so the quick check must not miss a symlink into a
  // work tree or a linked worktree (whose .git is a file).
  Sh("ln -s '" + repo + "/a/b' '" + dir_ + "/link'");
  EXPECT_TRUE(GitRepository::IsRepository(dir_ + "/link"));
  Git(repo, "worktree add -q '" + dir_ + "/linked' -b linked");
  EXPECT_TRUE(GitRepository::IsRepository(dir_ + "/linked"));
  EXPECT_FALSE(GitRepository::IsRepository(dir_ + "/linked-not"));
}

TEST_F(GitTest, CurrentBranchIsEmptyWhenDetachedOrUnborn) {
  std::string repo = Init("work");
  auto unborn = Open(repo);
  ASSERT_NE(unborn, nullptr);
  EXPECT_EQ(unborn->CurrentBranch(), std::nullopt);
  Commit(repo, "first");
  Git(repo, "checkout -q -b staging/login-fix");
  EXPECT_EQ(Open(repo)->CurrentBranch(), "staging/login-fix");
  Git(repo, "checkout -q --detach");
  EXPECT_EQ(Open(repo)->CurrentBranch(), std::nullopt);
}

TEST_F(GitTest, OpensABareRepository) {
  std::string origin = Init("origin");
  std::string id = Commit(origin, "first");
  Sh("git clone -q --bare '" + origin + "' '" + dir_ + "/bare.git'");
  EXPECT_TRUE(GitRepository::IsRepository(dir_ + "/bare.git"));
  auto r = Open(dir_ + "/bare.git");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->WorkTree(), "");
  EXPECT_EQ(r->CurrentBranch(), std::nullopt);
  Result<CommitInfo> main = r->Resolve("main");
  ASSERT_TRUE(main.ok()) << main.error().message;
  EXPECT_EQ(main->id, id);
}

TEST_F(GitTest, BranchesAreSortedWithTheirHeads) {
  std::string repo = Init("work");
  std::string first = Commit(repo, "first");
  Git(repo, "branch staging/login-fix");
  Git(repo, "branch feature-a");
  std::string second = Commit(repo, "second");
  auto r = Open(repo);
  ASSERT_NE(r, nullptr);
  Result<std::vector<BranchInfo>> branches = r->Branches();
  ASSERT_TRUE(branches.ok()) << branches.error().message;
  EXPECT_EQ(Names(*branches), (std::vector<std::string>{"feature-a", "main", "staging/login-fix"}));
  EXPECT_EQ((*branches)[0].head.id, first);
  EXPECT_EQ((*branches)[1].head.id, second);
  EXPECT_EQ((*branches)[2].head.id, first);
  EXPECT_EQ((*branches)[1].head.subject, "second");
}

TEST_F(GitTest, ResolvesBranchesIdsTagsAndExpressions) {
  std::string repo = Init("work");
  std::string first = Commit(repo, "first");
  Git(repo, "tag -a v1 -m 'release one'");
  Git(repo, "tag main");  // a tag named like a branch: the branch wins
  Git(repo, "checkout -q -b staging/login-fix");
  std::string second = Commit(repo, "second");
  Git(repo, "checkout -q main");
  std::string third = Commit(repo, "third");
  auto r = Open(repo);
  ASSERT_NE(r, nullptr);
  auto id = [&](const std::string& revision) {
    Result<CommitInfo> c = r->Resolve(revision);
    EXPECT_TRUE(c.ok()) << revision << ": " << c.error().message;
    return c.ok() ? c->id : "";
  };
  EXPECT_EQ(id("main"), third);
  EXPECT_EQ(id("staging/login-fix"), second);
  EXPECT_EQ(id(second.substr(0, 7)), second);
  EXPECT_EQ(id(second), second);
  EXPECT_EQ(id("v1"), first);
  EXPECT_EQ(id("HEAD"), third);
  EXPECT_EQ(id("HEAD~1"), first);

  Result<CommitInfo> unknown = r->Resolve("nope");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().message, "unknown revision nope in " + repo);
  EXPECT_FALSE(r->Resolve("").ok());
}

TEST_F(GitTest, CommitInfoHasSubjectAuthorTimeAndParents) {
  std::string repo = Init("work");
  std::string first = Commit(repo, "first");
  Git(repo, "commit -q --allow-empty -m 'Deploy the shop' -m 'A longer body.'");
  auto r = Open(repo);
  ASSERT_NE(r, nullptr);
  Result<CommitInfo> c = r->Resolve("HEAD");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->id, Git(repo, "rev-parse HEAD"));
  EXPECT_EQ(c->short_id, c->id.substr(0, 7));
  EXPECT_EQ(c->subject, "Deploy the shop");
  EXPECT_EQ(c->author, "t <t@e>");
  EXPECT_EQ(c->time, std::stoll(Git(repo, "log -1 --format=%ct")));
  EXPECT_EQ(c->parents, std::vector<std::string>{first});
}

TEST_F(GitTest, SnapshotListsAndReadsTheCommittedFiles) {
  std::string repo = Init("work");
  std::string binary("a\0b\xff", 4);
  Write(repo + "/driftless.yaml", "project: shop\n");
  Write(repo + "/a/b/c.yaml", "c: 1\n");
  Write(repo + "/a/x.yaml", "x: 1\n");
  Write(repo + "/a.b", binary);
  Write(repo + "/bin/run.sh", "#!/bin/sh\n");
  Sh("chmod +x '" + repo + "/bin/run.sh'");
  Write(repo + "/.driftless/state.json", "{}");
  Write(repo + "/a/.driftless/x.yaml", "hidden: 1\n");
  Sh("ln -s driftless.yaml '" + repo + "/link.yaml'");
  std::string first = Commit(repo, "first");
  Git(repo, "update-index --add --cacheinfo 160000," + first + ",vendor/mod");  // a submodule
  Git(repo, "commit -q -m second");  // not Commit: `add -A` would drop the folderless submodule
  std::string id = Git(repo, "rev-parse HEAD");

  auto r = Open(repo);
  ASSERT_NE(r, nullptr);
  auto s = Snapshot(*r, "main");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->Revision(), id);
  EXPECT_EQ(s->Describe(), "commit " + id.substr(0, 7) + " of " + repo);
  Result<std::vector<std::string>> files = s->ListFiles();
  ASSERT_TRUE(files.ok()) << files.error().message;
  EXPECT_EQ(*files, (std::vector<std::string>{"a.b", "a/b/c.yaml", "a/x.yaml", "bin/run.sh",
                                              "driftless.yaml"}));

  EXPECT_EQ(*s->ReadFile("driftless.yaml"), "project: shop\n");
  EXPECT_EQ(*s->ReadFile("a/b/c.yaml"), "c: 1\n");
  EXPECT_EQ(*s->ReadFile("./a//x.yaml"), "x: 1\n");
  EXPECT_EQ(*s->ReadFile("a.b"), binary);

  Result<std::string> missing = s->ReadFile("missing.yaml");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message,
            "no file missing.yaml in commit " + id.substr(0, 7) + " of " + repo);
  EXPECT_FALSE(s->ReadFile("a").ok());  // a folder
  for (std::string bad : {"../x", "a/../../x", "a/..", "/etc/passwd", ""}) {
    Result<std::string> outside = s->ReadFile(bad);
    ASSERT_FALSE(outside.ok()) << bad;
    EXPECT_EQ(outside.error().message, "path " + bad + " is outside the repository");
  }
  Result<std::string> link = s->ReadFile("link.yaml");
  ASSERT_FALSE(link.ok());
  EXPECT_NE(link.error().message.find("link.yaml is a symbolic link in commit " + id.substr(0, 7)),
            std::string::npos)
      << link.error().message;
  Result<std::string> submodule = s->ReadFile("vendor/mod");
  ASSERT_FALSE(submodule.ok());
  EXPECT_NE(submodule.error().message.find("submodule"), std::string::npos);
}

TEST_F(GitTest, SnapshotDoesNotSeeTheWorkingTree) {
  std::string repo = Init("work");
  Write(repo + "/a.yaml", "a: 1\n");
  std::string id = Commit(repo, "first");
  Write(repo + "/a.yaml", "a: 2\n");
  Write(repo + "/staged.yaml", "s: 1\n");
  Git(repo, "add staged.yaml");
  Write(repo + "/untracked.yaml", "u: 1\n");
  Git(repo, "rm -q --cached a.yaml");  // deleted in the index, still in HEAD

  auto r = Open(repo);
  ASSERT_NE(r, nullptr);
  auto s = Snapshot(*r, "HEAD");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(*s->ListFiles(), std::vector<std::string>{"a.yaml"});
  EXPECT_EQ(*s->ReadFile("a.yaml"), "a: 1\n");
  EXPECT_FALSE(s->ReadFile("staged.yaml").ok());
  EXPECT_FALSE(s->ReadFile("untracked.yaml").ok());
  EXPECT_EQ(s->Revision(), id);
}

TEST_F(GitTest, SnapshotOutlivesItsRepository) {
  std::string repo = Init("work");
  Write(repo + "/a.yaml", "a: 1\n");
  Commit(repo, "first");
  auto r = Open(repo);
  ASSERT_NE(r, nullptr);
  auto s = Snapshot(*r, "main");
  ASSERT_NE(s, nullptr);
  r.reset();
  EXPECT_EQ(*s->ReadFile("a.yaml"), "a: 1\n");
}

// The loader reads files from several threads at once; run under ASan in the asan preset.
TEST_F(GitTest, ReadFileFromEightThreads) {
  std::string repo = Init("work");
  constexpr int kFiles = 500;
  auto path = [](int i) {
    return "d" + std::to_string(i % 10) + "/s" + std::to_string(i % 7) + "/f" + std::to_string(i) +
           ".yaml";
  };
  auto content = [](int i) {
    std::string out = "index: " + std::to_string(i) + "\n";
    for (int k = 0; k < i % 50; ++k)
      out += "line " + std::to_string(k) + " of " + std::to_string(i) + "\n";
    return out;
  };
  for (int i = 0; i < kFiles; ++i) Write(repo + "/" + path(i), content(i));
  Commit(repo, "many files");

  // Loose objects first, then the same commit from a pack file (another odb backend).
  for (bool packed : {false, true}) {
    SCOPED_TRACE(packed ? "packed" : "loose");
    if (packed) Git(repo, "gc -q");
    auto r = Open(repo);
    ASSERT_NE(r, nullptr);
    auto s = Snapshot(*r, "main");
    ASSERT_NE(s, nullptr);
    ASSERT_EQ(s->ListFiles()->size(), static_cast<size_t>(kFiles));
    std::atomic<int> read{0};
    std::atomic<int> wrong{0};
    std::atomic<bool> done{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        for (int n = 0; n < kFiles; ++n) {
          int i = (n * 7 + t * 61) % kFiles;  // every thread reads every file, in its own order
          Result<std::string> bytes = s->ReadFile(path(i));
          if (!bytes.ok() || *bytes != content(i)) ++wrong;
          ++read;
        }
      });
    }
    // Meanwhile the repository itself is used (under its own lock) from another thread.
    std::thread other([&] {
      while (!done) {
        if (!r->Resolve("HEAD").ok() || !r->Branches().ok()) ++wrong;
      }
    });
    for (auto& t : threads) t.join();
    done = true;
    other.join();
    EXPECT_EQ(read, 8 * kFiles);
    EXPECT_EQ(wrong, 0);
  }
}

// main: c1 - c2 - c3 - m - c4, with feature (f1 - f2, branched at c2) merged by m (--no-ff).
class GitHistoryTest : public GitTest {
 protected:
  void SetUp() override {
    GitTest::SetUp();
    repo_ = Init("work");
    c1_ = Commit(repo_, "c1");
    c2_ = Commit(repo_, "c2");
    Git(repo_, "checkout -q -b feature");
    f1_ = Commit(repo_, "f1");
    f2_ = Commit(repo_, "f2");
    Git(repo_, "checkout -q main");
    c3_ = Commit(repo_, "c3");
    Git(repo_, "merge -q --no-ff -m merge feature");
    m_ = Git(repo_, "rev-parse HEAD");
    c4_ = Commit(repo_, "c4");
    r_ = Open(repo_);
    ASSERT_NE(r_, nullptr);
  }

  std::string repo_, c1_, c2_, f1_, f2_, c3_, m_, c4_;
  std::unique_ptr<GitRepository> r_;
};

TEST_F(GitHistoryTest, FirstParentRangeFollowsFirstParentsOldestFirst) {
  Result<std::vector<CommitInfo>> range = r_->FirstParentRange(c1_, c4_);
  ASSERT_TRUE(range.ok()) << range.error().message;
  EXPECT_EQ(Ids(*range), (std::vector<std::string>{c2_, c3_, m_, c4_}));
  EXPECT_EQ((*range)[2].parents, (std::vector<std::string>{c3_, f2_}));
  EXPECT_EQ(Ids(*r_->FirstParentRange(c2_.substr(0, 7), "main~1")),
            (std::vector<std::string>{c3_, m_}));
  Result<std::vector<CommitInfo>> same = r_->FirstParentRange(c4_, "main");
  ASSERT_TRUE(same.ok()) << same.error().message;
  EXPECT_TRUE(same->empty());
}

TEST_F(GitHistoryTest, FirstParentRangeRejectsCommitsOffTheChain) {
  Result<std::vector<CommitInfo>> merged = r_->FirstParentRange(f1_, c4_);  // an ancestor, but
  ASSERT_FALSE(merged.ok());                                                // via a merge
  EXPECT_EQ(merged.error().message, "commit " + f1_.substr(0, 7) +
                                        " is not on the first-parent history of " +
                                        c4_.substr(0, 7) + " in " + repo_);
  Result<std::vector<CommitInfo>> backwards = r_->FirstParentRange(c4_, c1_);
  ASSERT_FALSE(backwards.ok());
  EXPECT_NE(backwards.error().message.find("is not on the first-parent history"),
            std::string::npos);
  EXPECT_FALSE(r_->FirstParentRange("nope", c4_).ok());
}

TEST_F(GitHistoryTest, CountBetweenCountsLikeRevList) {
  EXPECT_EQ(*r_->CountBetween(c1_, c4_), 6);  // c2 c3 f1 f2 m c4
  EXPECT_EQ(*r_->CountBetween(f2_, c4_), 3);  // c3 m c4
  EXPECT_EQ(*r_->CountBetween(c4_, c1_), 0);
  EXPECT_EQ(*r_->CountBetween(c4_, c4_), 0);
  EXPECT_EQ(*r_->CountBetween(f2_, c3_), 1);
  EXPECT_FALSE(r_->CountBetween(c1_, "nope").ok());
}

TEST_F(GitHistoryTest, IsAncestor) {
  EXPECT_TRUE(*r_->IsAncestor(c1_, c4_));
  EXPECT_TRUE(*r_->IsAncestor(f1_, "main"));
  EXPECT_TRUE(*r_->IsAncestor(c4_, c4_));
  EXPECT_FALSE(*r_->IsAncestor(c4_, c1_));
  EXPECT_FALSE(*r_->IsAncestor(f1_, c3_));
  EXPECT_FALSE(r_->IsAncestor("nope", c4_).ok());
}

TEST_F(GitTest, MirrorsAFileUrlAndFetchesWithPrune) {
  std::string origin = Init("origin");
  Write(origin + "/driftless.yaml", "v: 1\n");
  std::string first = Commit(origin, "first");
  Git(origin, "checkout -q -b feature/x");
  std::string feature = Commit(origin, "feature");
  Git(origin, "checkout -q main");
  std::string url = "file://" + origin;
  std::string mirror = dir_ + "/cache/repos/" + Sha256Hex(url).substr(0, 16);

  auto r = Open(url);
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(r->is_mirror());
  EXPECT_EQ(r->location(), url);
  EXPECT_EQ(r->WorkTree(), "");
  EXPECT_EQ(r->CurrentBranch(), std::nullopt);
  EXPECT_TRUE(fs::exists(mirror + "/HEAD")) << mirror;  // a bare repository
  EXPECT_TRUE(fs::exists(mirror + "/objects"));
  Result<std::vector<BranchInfo>> branches = r->Branches();
  ASSERT_TRUE(branches.ok()) << branches.error().message;
  EXPECT_EQ(Names(*branches), (std::vector<std::string>{"feature/x", "main"}));
  EXPECT_EQ((*branches)[0].head.id, feature);
  EXPECT_EQ((*branches)[1].head.id, first);
  Result<CommitInfo> head = r->Resolve("HEAD");  // the mirror's HEAD follows the origin's
  ASSERT_TRUE(head.ok()) << head.error().message;
  EXPECT_EQ(head->id, first);
  auto s = Snapshot(*r, "main");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(*s->ReadFile("driftless.yaml"), "v: 1\n");
  EXPECT_EQ(s->Describe(), "commit " + first.substr(0, 7) + " of " + url);

  // The origin moves on: a new commit on main, feature/x deleted.
  Write(origin + "/driftless.yaml", "v: 2\n");
  std::string second = Commit(origin, "second");
  Git(origin, "branch -q -D feature/x");

  options_.fetch = false;
  auto stale = Open(url);
  ASSERT_NE(stale, nullptr);
  EXPECT_EQ(Names(*stale->Branches()), (std::vector<std::string>{"feature/x", "main"}));
  EXPECT_EQ(stale->Resolve("main")->id, first);

  options_.fetch = true;
  auto fresh = Open(url);
  ASSERT_NE(fresh, nullptr);
  branches = fresh->Branches();
  ASSERT_TRUE(branches.ok()) << branches.error().message;
  EXPECT_EQ(Names(*branches), std::vector<std::string>{"main"});
  EXPECT_EQ((*branches)[0].head.id, second);
  EXPECT_EQ(*Snapshot(*fresh, "main")->ReadFile("driftless.yaml"), "v: 2\n");
  EXPECT_EQ(*fresh->CountBetween(first, "main"), 1);
  // The first snapshot still reads its commit.
  EXPECT_EQ(*s->ReadFile("driftless.yaml"), "v: 1\n");
}

TEST_F(GitTest, ConcurrentOpensOfOneUrlShareOneMirror) {
  std::string origin = Init("origin");
  std::string id = Commit(origin, "first");
  std::string url = "file://" + origin;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      Result<std::unique_ptr<GitRepository>> r = GitRepository::Open(url, options_);
      if (r.ok() && (*r)->Resolve("main").ok() && (*r)->Resolve("main")->id == id) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 4);
  std::vector<std::string> entries;
  for (const auto& e : fs::directory_iterator(dir_ + "/cache/repos")) {
    entries.push_back(e.path().filename().string());
  }
  std::sort(entries.begin(), entries.end());
  std::string name = Sha256Hex(url).substr(0, 16);
  EXPECT_EQ(entries, (std::vector<std::string>{name, name + ".lock"}));  // no temporary clones
}

TEST_F(GitTest, OpenErrorsNameTheLocation) {
  Result<std::unique_ptr<GitRepository>> missing = GitRepository::Open(dir_ + "/nope", options_);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find(dir_ + "/nope"), std::string::npos)
      << missing.error().message;

  Result<std::unique_ptr<GitRepository>> plain = GitRepository::Open(dir_, options_);
  ASSERT_FALSE(plain.ok());
  EXPECT_NE(plain.error().message.find(dir_ + " is not inside a Git repository"), std::string::npos)
      << plain.error().message;

  std::string url = "file://" + dir_ + "/missing.git";
  Result<std::unique_ptr<GitRepository>> bad = GitRepository::Open(url, options_);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("cannot fetch " + url), std::string::npos)
      << bad.error().message;
  // Nothing half-made is left in the cache.
  for (const auto& e : fs::directory_iterator(dir_ + "/cache/repos")) {
    EXPECT_EQ(e.path().extension(), ".lock") << e.path();
  }
}

TEST_F(GitTest, ErrorsDoNotShowAPassword) {
  // Port 1 on the loopback refuses at once: no network is needed.
  std::string url = "https://deploy:s3cret@127.0.0.1:1/shop.git";
  Result<std::unique_ptr<GitRepository>> r = GitRepository::Open(url, options_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.find("s3cret"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("https://deploy:***@127.0.0.1:1/shop.git"), std::string::npos)
      << r.error().message;
}

}  // namespace
}  // namespace driftless::source
