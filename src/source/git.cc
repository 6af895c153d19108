#include "source/git.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <utility>

#include "base/file_util.h"
#include "base/hash.h"
#include "source/git_internal.h"

namespace driftless::source {

namespace git_internal {

void InitLibgit2() {
  static std::once_flag once;
  std::call_once(once, [] { git_libgit2_init(); });
}

std::string LastGitError() {
  const git_error* e = git_error_last();
  return e != nullptr && e->message != nullptr ? e->message : "unknown libgit2 error";
}

std::string OidHex(const git_oid& oid) {
  char buf[GIT_OID_HEXSZ + 1];
  git_oid_tostr(buf, sizeof buf, &oid);
  return buf;
}

std::string RedactUrl(const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  size_t host = scheme + 3;
  size_t end = url.find_first_of("/?#", host);
  if (end == std::string::npos) end = url.size();
  size_t at = url.rfind('@', end);
  if (at == std::string::npos || at < host) return url;
  size_t colon = url.find(':', host);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

}  // namespace git_internal

using git_internal::BranchIteratorPtr;
using git_internal::CommitPtr;
using git_internal::ConfigPtr;
using git_internal::InitLibgit2;
using git_internal::LastGitError;
using git_internal::MakeSnapshot;
using git_internal::ObjectPtr;
using git_internal::OidHex;
using git_internal::RedactUrl;
using git_internal::ReferencePtr;
using git_internal::RemotePtr;
using git_internal::RepoHandle;
using git_internal::RepositoryPtr;
using git_internal::RevwalkPtr;

namespace {

// A mirror keeps the remote's branches as its own, and drops those the remote deleted.
constexpr char kMirrorRefspec[] = "+refs/heads/*:refs/heads/*";

// `https://host/x`, `file:///x`, `ssh://host/x` (a scheme before "://"), or Git's scp-like
// `user@host:path` (a ':' before the first '/').
bool IsUrl(const std::string& location) {
  size_t sep = location.find("://");
  if (sep != std::string::npos && sep > 0) {
    bool scheme =
        std::all_of(location.begin(), location.begin() + static_cast<long>(sep), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
        });
    if (scheme) return true;
  }
  size_t colon = location.find(':');
  if (colon == std::string::npos || colon == 0) return false;
  size_t slash = location.find('/');
  return slash == std::string::npos || colon < slash;
}

bool Exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

std::string DefaultCacheDir() {
  if (const char* d = std::getenv("DRIFTLESS_CACHE"); d != nullptr && *d != '\0') return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x != nullptr && *x != '\0') {
    return std::string(x) + "/driftless";
  }
  if (const char* h = std::getenv("HOME"); h != nullptr && *h != '\0') {
    return std::string(h) + "/.cache/driftless";
  }
  return "";
}

// libgit2's last message with the URL's password (if any) taken out.
std::string GitErrorFor(const std::string& url) {
  std::string message = LastGitError();
  std::string redacted = RedactUrl(url);
  if (redacted != url) {
    for (size_t at = message.find(url); at != std::string::npos; at = message.find(url, at)) {
      message.replace(at, url.size(), redacted);
      at += redacted.size();
    }
  }
  return message;
}

// An exclusive flock(2) on a file beside the mirror, held while it is cloned or fetched, so two
// processes never fetch into the same mirror at once. The kernel drops it if the process dies.
class FileLock {
 public:
  FileLock() = default;
  ~FileLock() {
    if (fd_ >= 0) close(fd_);
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

  Status Acquire(const std::string& path) {
    fd_ = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) return MakeError("cannot create lock file " + path + ": " + ErrnoMessage());
    while (flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) return MakeError("cannot lock " + path + ": " + ErrnoMessage());
    }
    return Status::Ok();
  }

 private:
  int fd_ = -1;
};

// Credentials for a fetch: ssh keys from ssh-agent; for https a user name and password (or
// token) from DRIFTLESS_GIT_USERNAME / DRIFTLESS_GIT_PASSWORD. Each is offered once: libgit2
// asks again after a refusal, and would otherwise loop. Secrets never reach a message.
struct CredentialState {
  bool tried_agent = false;
  bool tried_password = false;
};

int AcquireCredentials(git_credential** out, const char* /*url*/, const char* username_from_url,
                       unsigned int allowed, void* payload) {
  auto& state = *static_cast<CredentialState*>(payload);
  const char* url_user =
      username_from_url != nullptr && *username_from_url != '\0' ? username_from_url : nullptr;
  if ((allowed & GIT_CREDENTIAL_USERNAME) != 0) {
    return git_credential_username_new(out, url_user != nullptr ? url_user : "git");
  }
  if ((allowed & GIT_CREDENTIAL_SSH_KEY) != 0) {
    if (state.tried_agent) {
      git_error_set_str(GIT_ERROR_SSH,
                        "the server accepted no key from ssh-agent (add the deploy key with "
                        "ssh-add, and check SSH_AUTH_SOCK)");
      return GIT_EAUTH;
    }
    state.tried_agent = true;
    return git_credential_ssh_key_from_agent(out, url_user != nullptr ? url_user : "git");
  }
  if ((allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) != 0) {
    const char* user = std::getenv("DRIFTLESS_GIT_USERNAME");
    const char* password = std::getenv("DRIFTLESS_GIT_PASSWORD");
    if (password == nullptr || *password == '\0') {
      git_error_set_str(GIT_ERROR_HTTP,
                        "the server asks for credentials: set DRIFTLESS_GIT_USERNAME and "
                        "DRIFTLESS_GIT_PASSWORD (a token)");
      return GIT_EAUTH;
    }
    if (state.tried_password) {
      git_error_set_str(GIT_ERROR_HTTP,
                        "the server refused DRIFTLESS_GIT_USERNAME / DRIFTLESS_GIT_PASSWORD");
      return GIT_EAUTH;
    }
    state.tried_password = true;
    if (user == nullptr || *user == '\0') user = url_user != nullptr ? url_user : "git";
    return git_credential_userpass_plaintext_new(out, user, password);
  }
  git_error_set_str(GIT_ERROR_NET,
                    "the server asks for an authentication method driftless "
                    "does not support (use ssh-agent or a password/token)");
  return GIT_EAUTH;
}

// Fetches every branch of `url` into the mirror (pruning deleted ones) and tags, then points the
// mirror's HEAD at the remote's default branch when the remote names one.
//
// The remote is an in-memory one made with GIT_REMOTE_CREATE_SKIP_INSTEADOF, never looked up
// by name: git_remote_lookup and the url.*.insteadOf scan match config entries with a regular
// expression, and that leaks pcre2 match data in libgit2 1.5 (found by the ASan build; tens of
// KiB per fetch, which a server polling a repository would feel). So insteadOf rewriting does
// not apply to mirrored URLs.
Status FetchMirror(git_repository* repo, const std::string& url, const std::string& dir) {
  git_remote_create_options create;
  git_remote_create_options_init(&create, GIT_REMOTE_CREATE_OPTIONS_VERSION);
  create.repository = repo;
  create.name = nullptr;  // in memory
  create.fetchspec = kMirrorRefspec;
  create.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF;
  git_remote* raw_remote = nullptr;
  if (git_remote_create_with_opts(&raw_remote, url.c_str(), &create) < 0) {
    return MakeError("cannot mirror " + RedactUrl(url) + ": " + GitErrorFor(url));
  }
  RemotePtr remote(raw_remote);
  git_fetch_options opts;
  git_fetch_options_init(&opts, GIT_FETCH_OPTIONS_VERSION);
  opts.prune = GIT_FETCH_PRUNE;
  opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_ALL;
  CredentialState state;
  opts.callbacks.credentials = AcquireCredentials;
  opts.callbacks.payload = &state;
  if (git_remote_fetch(remote.get(), nullptr, &opts, "driftless: fetch") < 0) {
    return MakeError("cannot fetch " + RedactUrl(url) + " into " + dir + ": " + GitErrorFor(url));
  }
  git_buf head = GIT_BUF_INIT;
  if (git_remote_default_branch(&head, remote.get()) == 0) {
    git_repository_set_head(repo, head.ptr);  // best effort: HEAD of a mirror is a convenience
  }
  git_buf_dispose(&head);
  git_error_clear();
  return Status::Ok();
}

// The URL a mirror was made from (its remote.origin.url, without a password), or "".
std::string MirrorUrl(git_repository* repo) {
  git_config* raw = nullptr;
  if (git_repository_config_snapshot(&raw, repo) < 0) {
    git_error_clear();
    return "";
  }
  ConfigPtr config(raw);
  const char* url = nullptr;
  if (git_config_get_string(&url, config.get(), "remote.origin.url") < 0) {
    git_error_clear();
    return "";
  }
  return url;
}

// Clones `url` into a bare mirror at `dir`: into a fresh folder beside it, then rename(2) into
// place, so no process ever sees a half-made mirror. When another process renamed its clone
// first, ours is dropped and theirs used. The URL is recorded in the mirror's config without its
// password (never written to disk), to check later that the folder mirrors that URL.
Status CloneMirror(const std::string& url, const std::string& dir) {
  std::string tmp = dir + ".tmp-" + RandomHex(6);
  Status made = [&]() -> Status {
    git_repository* raw = nullptr;
    if (git_repository_init(&raw, tmp.c_str(), /*is_bare=*/1) < 0) {
      return MakeError("cannot create a mirror of " + RedactUrl(url) + " in " + tmp + ": " +
                       LastGitError());
    }
    RepositoryPtr repo(raw);
    git_config* raw_config = nullptr;
    if (git_repository_config(&raw_config, repo.get()) < 0) {
      return MakeError("cannot configure the mirror " + tmp + ": " + LastGitError());
    }
    ConfigPtr config(raw_config);
    if (git_config_set_string(config.get(), "remote.origin.url", RedactUrl(url).c_str()) < 0 ||
        git_config_set_string(config.get(), "remote.origin.fetch", kMirrorRefspec) < 0) {
      return MakeError("cannot configure the mirror " + tmp + ": " + GitErrorFor(url));
    }
    return FetchMirror(repo.get(), url, dir);
  }();
  std::error_code ignored;
  if (!made.ok()) {
    std::filesystem::remove_all(tmp, ignored);
    return made;
  }
  if (rename(tmp.c_str(), dir.c_str()) != 0) {
    int err = errno;
    std::filesystem::remove_all(tmp, ignored);
    if (err == EEXIST || err == ENOTEMPTY) return Status::Ok();  // lost the race: use theirs
    errno = err;
    return MakeError("cannot move the mirror " + tmp + " to " + dir + ": " + ErrnoMessage());
  }
  return Status::Ok();
}

}  // namespace

struct GitRepository::Impl {
  std::string location;
  std::string display;  // location for messages (a URL without its password)
  bool mirror = false;
  std::string work_tree;
  std::shared_ptr<RepoHandle> handle;

  // The members below use the repository: the caller holds handle->mu.

  // Branch names first (refs/heads/<revision>), then anything git_revparse_single reads.
  Result<CommitPtr> LookupCommit(const std::string& revision) const {
    git_repository* repo = handle->repo.get();
    if (revision.empty()) return MakeError("empty revision for " + display);
    std::string branch = "refs/heads/" + revision;
    int valid = 0;
    if (git_reference_name_is_valid(&valid, branch.c_str()) == 0 && valid != 0) {
      git_reference* raw_ref = nullptr;
      if (git_reference_lookup(&raw_ref, repo, branch.c_str()) == 0) {
        ReferencePtr ref(raw_ref);
        git_object* peeled = nullptr;
        if (git_reference_peel(&peeled, ref.get(), GIT_OBJECT_COMMIT) == 0) {
          return CommitPtr(reinterpret_cast<git_commit*>(peeled));
        }
      }
    }
    git_object* raw = nullptr;
    int rc = git_revparse_single(&raw, repo, revision.c_str());
    if (rc == GIT_EAMBIGUOUS) {
      return MakeError("ambiguous revision " + revision + " in " + display +
                       ": give more characters of the commit id");
    }
    if (rc < 0) {
      git_error_clear();
      return MakeError("unknown revision " + revision + " in " + display);
    }
    ObjectPtr object(raw);
    git_object* peeled = nullptr;
    if (git_object_peel(&peeled, object.get(), GIT_OBJECT_COMMIT) < 0) {
      return MakeError("revision " + revision + " in " + display +
                       " is not a commit: " + LastGitError());
    }
    return CommitPtr(reinterpret_cast<git_commit*>(peeled));
  }

  static CommitInfo Info(git_commit* commit) {
    CommitInfo info;
    info.id = OidHex(*git_commit_id(commit));
    info.short_id = info.id.substr(0, 7);
    const char* summary = git_commit_summary(commit);
    info.subject = summary != nullptr ? summary : "";
    if (const git_signature* a = git_commit_author(commit); a != nullptr) {
      info.author = std::string(a->name != nullptr ? a->name : "") + " <" +
                    (a->email != nullptr ? a->email : "") + ">";
    }
    info.time = git_commit_time(commit);
    for (unsigned i = 0; i < git_commit_parentcount(commit); ++i) {
      info.parents.push_back(OidHex(*git_commit_parent_id(commit, i)));
    }
    return info;
  }
};

namespace {

// Wraps an opened repository: fetches its object database once (see RepoHandle).
Result<std::shared_ptr<RepoHandle>> MakeHandle(RepositoryPtr repo, const std::string& display) {
  auto handle = std::make_shared<RepoHandle>();
  git_odb* odb = nullptr;
  if (git_repository_odb(&odb, repo.get()) < 0) {
    return MakeError("cannot open the object database of " + display + ": " + LastGitError());
  }
  handle->odb.reset(odb);
  handle->repo = std::move(repo);
  handle->odb_needs_lock = (git_libgit2_features() & GIT_FEATURE_THREADS) == 0;
  return handle;
}

// Opens (cloning first when needed, fetching when asked) the mirror of `url` in the cache.
Result<RepositoryPtr> OpenMirror(const std::string& url, const GitRepository::Options& options) {
  std::string display = RedactUrl(url);
  std::string cache = options.cache_dir.empty() ? DefaultCacheDir() : options.cache_dir;
  if (cache.empty()) {
    return MakeError("cannot mirror " + display + ": no cache folder (set DRIFTLESS_CACHE)");
  }
  std::string repos = cache + "/repos";
  if (Status s = MakeDirs(repos); !s.ok()) {
    return MakeError("cannot mirror " + display + ": " + s.error().message);
  }
  std::string dir = repos + "/" + Sha256Hex(url).substr(0, 16);

  FileLock lock;
  bool fetched = false;
  if (options.fetch || !Exists(dir)) {
    if (Status s = lock.Acquire(dir + ".lock"); !s.ok()) {
      return MakeError("cannot mirror " + display + ": " + s.error().message);
    }
    if (!Exists(dir)) {
      if (Status s = CloneMirror(url, dir); !s.ok()) return s.error();
      fetched = true;
    }
  }
  git_repository* raw = nullptr;
  if (git_repository_open_bare(&raw, dir.c_str()) < 0) {
    return MakeError("cannot open the mirror " + dir + " of " + display + ": " + LastGitError() +
                     " (remove the folder to mirror again)");
  }
  RepositoryPtr repo(raw);
  if (std::string origin = MirrorUrl(repo.get()); origin != display) {
    return MakeError("the mirror " + dir + " is of " + origin + ", not " + display +
                     " (remove the folder to mirror again)");
  }
  if (options.fetch && !fetched) {
    if (Status s = FetchMirror(repo.get(), url, dir); !s.ok()) return s.error();
  }
  return repo;
}

}  // namespace

Result<std::unique_ptr<GitRepository>> GitRepository::Open(const std::string& location,
                                                           const Options& options) {
  InitLibgit2();
  auto impl = std::make_unique<Impl>();
  impl->location = location;
  RepositoryPtr repo;
  if (IsUrl(location)) {
    impl->mirror = true;
    impl->display = RedactUrl(location);
    Result<RepositoryPtr> mirror = OpenMirror(location, options);
    if (!mirror.ok()) return mirror.error();
    repo = std::move(*mirror);
  } else {
    impl->display = location;
    struct stat st {};
    if (stat(location.c_str(), &st) != 0) {
      return MakeError("cannot open repository " + location + ": " + ErrnoMessage());
    }
    git_repository* raw = nullptr;
    if (git_repository_open_ext(&raw, location.c_str(), 0, nullptr) < 0) {
      return MakeError(location + " is not inside a Git repository: " + LastGitError() +
                       " (pass a folder of a Git working tree, a bare repository or a URL)");
    }
    repo.reset(raw);
    if (git_repository_is_bare(repo.get()) == 0) {
      const char* workdir = git_repository_workdir(repo.get());
      impl->work_tree = workdir != nullptr ? workdir : "";
      while (impl->work_tree.size() > 1 && impl->work_tree.back() == '/') {
        impl->work_tree.pop_back();
      }
    }
  }
  Result<std::shared_ptr<RepoHandle>> handle = MakeHandle(std::move(repo), impl->display);
  if (!handle.ok()) return handle.error();
  impl->handle = std::move(*handle);
  return std::unique_ptr<GitRepository>(new GitRepository(std::move(impl)));
}

namespace {

// Whether libgit2's discovery could find a repository at `path` or above it: some folder on the
// way up holds `.git`, or is itself a bare repository (HEAD, objects and refs). A superset of what
// git_repository_open_ext accepts, checked with a few stat calls, so that a plain folder does not
// pay for libgit2's initialisation (its TLS and SSH libraries load the system's certificates and
// OpenSSL's providers: milliseconds and megabytes).
bool MayBeRepository(const std::string& path) {
  // Both the folders as written and as resolved (a symlink into a repository's work tree).
  std::error_code ec1, ec2;
  std::filesystem::path lexical = std::filesystem::absolute(path, ec1);
  std::filesystem::path resolved = std::filesystem::weakly_canonical(path, ec2);
  if (ec1 || ec2) return true;  // let libgit2 decide
  for (std::filesystem::path dir : {lexical, resolved}) {
    for (;;) {
      const std::string d = dir.string();
      if (Exists(d + "/.git")) return true;
      if (Exists(d + "/HEAD") && Exists(d + "/objects") && Exists(d + "/refs")) return true;
      if (!dir.has_relative_path()) break;  // the root was checked
      dir = dir.parent_path();
    }
  }
  return false;
}

}  // namespace

bool GitRepository::IsRepository(const std::string& path) {
  if (path.empty()) return false;
  if (!MayBeRepository(path)) return false;
  InitLibgit2();
  int rc = git_repository_open_ext(nullptr, path.c_str(), 0, nullptr);  // nullptr: only check
  git_error_clear();
  return rc == 0;
}

GitRepository::GitRepository(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GitRepository::~GitRepository() = default;

const std::string& GitRepository::location() const { return impl_->location; }
bool GitRepository::is_mirror() const { return impl_->mirror; }
std::string GitRepository::WorkTree() const { return impl_->work_tree; }

std::optional<std::string> GitRepository::CurrentBranch() const {
  if (impl_->work_tree.empty()) return std::nullopt;  // bare or mirrored
  std::lock_guard<std::mutex> lock(impl_->handle->mu);
  git_reference* raw = nullptr;
  if (git_repository_head(&raw, impl_->handle->repo.get()) < 0) {  // unborn, or no HEAD
    git_error_clear();
    return std::nullopt;
  }
  ReferencePtr head(raw);
  if (git_reference_is_branch(head.get()) == 0) return std::nullopt;  // detached
  return std::string(git_reference_shorthand(head.get()));
}

Result<std::vector<BranchInfo>> GitRepository::Branches() const {
  std::lock_guard<std::mutex> lock(impl_->handle->mu);
  git_branch_iterator* raw_it = nullptr;
  if (git_branch_iterator_new(&raw_it, impl_->handle->repo.get(), GIT_BRANCH_LOCAL) < 0) {
    return MakeError("cannot list the branches of " + impl_->display + ": " + LastGitError());
  }
  BranchIteratorPtr it(raw_it);
  std::vector<BranchInfo> out;
  while (true) {
    git_reference* raw_ref = nullptr;
    git_branch_t type;
    int rc = git_branch_next(&raw_ref, &type, it.get());
    if (rc == GIT_ITEROVER) break;
    if (rc < 0) {
      return MakeError("cannot list the branches of " + impl_->display + ": " + LastGitError());
    }
    ReferencePtr ref(raw_ref);
    const char* name = nullptr;
    git_object* peeled = nullptr;
    if (git_branch_name(&name, ref.get()) < 0 ||
        git_reference_peel(&peeled, ref.get(), GIT_OBJECT_COMMIT) < 0) {
      git_error_clear();  // a broken or non-commit branch: not a branch we can deploy
      continue;
    }
    CommitPtr commit(reinterpret_cast<git_commit*>(peeled));
    out.push_back(BranchInfo{name, Impl::Info(commit.get())});
  }
  std::sort(out.begin(), out.end(),
            [](const BranchInfo& a, const BranchInfo& b) { return a.name < b.name; });
  return out;
}

Result<CommitInfo> GitRepository::Resolve(const std::string& revision) const {
  std::lock_guard<std::mutex> lock(impl_->handle->mu);
  Result<CommitPtr> commit = impl_->LookupCommit(revision);
  if (!commit.ok()) return commit.error();
  return Impl::Info(commit->get());
}

Result<bool> GitRepository::IsAncestor(const std::string& ancestor,
                                       const std::string& descendant) const {
  std::lock_guard<std::mutex> lock(impl_->handle->mu);
  Result<CommitPtr> a = impl_->LookupCommit(ancestor);
  if (!a.ok()) return a.error();
  Result<CommitPtr> d = impl_->LookupCommit(descendant);
  if (!d.ok()) return d.error();
  const git_oid* a_id = git_commit_id(a->get());
  const git_oid* d_id = git_commit_id(d->get());
  if (git_oid_equal(a_id, d_id) != 0) return true;
  int rc = git_graph_descendant_of(impl_->handle->repo.get(), d_id, a_id);
  if (rc < 0) {
    return MakeError("cannot compare " + ancestor + " and " + descendant + " in " + impl_->display +
                     ": " + LastGitError());
  }
  return rc == 1;
}

Result<std::vector<CommitInfo>> GitRepository::FirstParentRange(const std::string& from,
                                                                const std::string& to) const {
  std::lock_guard<std::mutex> lock(impl_->handle->mu);
  Result<CommitPtr> from_commit = impl_->LookupCommit(from);
  if (!from_commit.ok()) return from_commit.error();
  Result<CommitPtr> to_commit = impl_->LookupCommit(to);
  if (!to_commit.ok()) return to_commit.error();
  git_oid from_id = *git_commit_id(from_commit->get());
  git_oid to_id = *git_commit_id(to_commit->get());
  if (git_oid_equal(&from_id, &to_id) != 0) return std::vector<CommitInfo>{};
  auto not_on_chain = [&] {
    return MakeError("commit " + OidHex(from_id).substr(0, 7) +
                     " is not on the first-parent history of " + OidHex(to_id).substr(0, 7) +
                     " in " + impl_->display);
  };
  // Not an ancestor at all: say so without walking to the root.
  int rc = git_graph_descendant_of(impl_->handle->repo.get(), &to_id, &from_id);
  if (rc < 0) {
    return MakeError("cannot compare " + from + " and " + to + " in " + impl_->display + ": " +
                     LastGitError());
  }
  if (rc == 0) return not_on_chain();
  std::vector<CommitInfo> out;
  CommitPtr current = std::move(*to_commit);
  while (git_oid_equal(git_commit_id(current.get()), &from_id) == 0) {
    out.push_back(Impl::Info(current.get()));
    if (git_commit_parentcount(current.get()) == 0) return not_on_chain();
    git_commit* parent = nullptr;
    if (git_commit_parent(&parent, current.get(), 0) < 0) {
      return MakeError("cannot read the parent of commit " + out.back().short_id + " in " +
                       impl_->display + ": " + LastGitError());
    }
    current.reset(parent);
  }
  std::reverse(out.begin(), out.end());
  return out;
}

Result<int64_t> GitRepository::CountBetween(const std::string& from, const std::string& to) const {
  std::lock_guard<std::mutex> lock(impl_->handle->mu);
  Result<CommitPtr> from_commit = impl_->LookupCommit(from);
  if (!from_commit.ok()) return from_commit.error();
  Result<CommitPtr> to_commit = impl_->LookupCommit(to);
  if (!to_commit.ok()) return to_commit.error();
  auto failed = [&] {
    return MakeError("cannot count the commits from " + from + " to " + to + " in " +
                     impl_->display + ": " + LastGitError());
  };
  git_revwalk* raw = nullptr;
  if (git_revwalk_new(&raw, impl_->handle->repo.get()) < 0) return failed();
  RevwalkPtr walk(raw);
  if (git_revwalk_push(walk.get(), git_commit_id(to_commit->get())) < 0 ||
      git_revwalk_hide(walk.get(), git_commit_id(from_commit->get())) < 0) {
    return failed();
  }
  int64_t count = 0;
  git_oid id;
  int rc;
  while ((rc = git_revwalk_next(&id, walk.get())) == 0) ++count;
  if (rc != GIT_ITEROVER) return failed();
  return count;
}

Result<std::unique_ptr<Source>> GitRepository::Snapshot(const std::string& commit) const {
  std::lock_guard<std::mutex> lock(impl_->handle->mu);
  Result<CommitPtr> c = impl_->LookupCommit(commit);
  if (!c.ok()) return c.error();
  return MakeSnapshot(impl_->handle, c->get(), impl_->display);
}

}  // namespace driftless::source
