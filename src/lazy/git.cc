// libgit2, opened on first use (lazy.h): a project in a plain folder never opens it.
#include <git2.h>

#include "lazy/lazy.h"

namespace {

// The real function of the same name, resolved once (a function-local static: thread-safe).
#define DL_REAL(name)                                         \
  static const auto real = reinterpret_cast<decltype(&name)>( \
      driftless::lazy::Resolve("libgit2.so.1.5", "libgit2-1.5 (libgit2.so.1.5)", #name))

}  // namespace

extern "C" {

void git_branch_iterator_free(git_branch_iterator* iter) {
  DL_REAL(git_branch_iterator_free);
  real(iter);
}

int git_branch_iterator_new(git_branch_iterator** out, git_repository* repo,
                            git_branch_t list_flags) {
  DL_REAL(git_branch_iterator_new);
  return real(out, repo, list_flags);
}

int git_branch_name(const char** out, const git_reference* ref) {
  DL_REAL(git_branch_name);
  return real(out, ref);
}

int git_branch_next(git_reference** out, git_branch_t* out_type, git_branch_iterator* iter) {
  DL_REAL(git_branch_next);
  return real(out, out_type, iter);
}

void git_buf_dispose(git_buf* buffer) {
  DL_REAL(git_buf_dispose);
  real(buffer);
}

const git_signature* git_commit_author(const git_commit* commit) {
  DL_REAL(git_commit_author);
  return real(commit);
}

void git_commit_free(git_commit* commit) {
  DL_REAL(git_commit_free);
  real(commit);
}

const git_oid* git_commit_id(const git_commit* commit) {
  DL_REAL(git_commit_id);
  return real(commit);
}

int git_commit_parent(git_commit** out, const git_commit* commit, unsigned int n) {
  DL_REAL(git_commit_parent);
  return real(out, commit, n);
}

const git_oid* git_commit_parent_id(const git_commit* commit, unsigned int n) {
  DL_REAL(git_commit_parent_id);
  return real(commit, n);
}

unsigned int git_commit_parentcount(const git_commit* commit) {
  DL_REAL(git_commit_parentcount);
  return real(commit);
}

const char* git_commit_summary(git_commit* commit) {
  DL_REAL(git_commit_summary);
  return real(commit);
}

git_time_t git_commit_time(const git_commit* commit) {
  DL_REAL(git_commit_time);
  return real(commit);
}

int git_commit_tree(git_tree** tree_out, const git_commit* commit) {
  DL_REAL(git_commit_tree);
  return real(tree_out, commit);
}

void git_config_free(git_config* cfg) {
  DL_REAL(git_config_free);
  real(cfg);
}

int git_config_get_string(const char** out, const git_config* cfg, const char* name) {
  DL_REAL(git_config_get_string);
  return real(out, cfg, name);
}

int git_config_set_string(git_config* cfg, const char* name, const char* value) {
  DL_REAL(git_config_set_string);
  return real(cfg, name, value);
}

int git_credential_ssh_key_from_agent(git_credential** out, const char* username) {
  DL_REAL(git_credential_ssh_key_from_agent);
  return real(out, username);
}

int git_credential_username_new(git_credential** out, const char* username) {
  DL_REAL(git_credential_username_new);
  return real(out, username);
}

int git_credential_userpass_plaintext_new(git_credential** out, const char* username,
                                          const char* password) {
  DL_REAL(git_credential_userpass_plaintext_new);
  return real(out, username, password);
}

void git_error_clear(void) {
  DL_REAL(git_error_clear);
  real();
}

const git_error* git_error_last(void) {
  DL_REAL(git_error_last);
  return real();
}

int git_error_set_str(int error_class, const char* string) {
  DL_REAL(git_error_set_str);
  return real(error_class, string);
}

int git_fetch_options_init(git_fetch_options* opts, unsigned int version) {
  DL_REAL(git_fetch_options_init);
  return real(opts, version);
}

int git_graph_descendant_of(git_repository* repo, const git_oid* commit, const git_oid* ancestor) {
  DL_REAL(git_graph_descendant_of);
  return real(repo, commit, ancestor);
}

int git_libgit2_features(void) {
  DL_REAL(git_libgit2_features);
  return real();
}

int git_libgit2_init(void) {
  DL_REAL(git_libgit2_init);
  return real();
}

void git_object_free(git_object* object) {
  DL_REAL(git_object_free);
  real(object);
}

int git_object_peel(git_object** peeled, const git_object* object, git_object_t target_type) {
  DL_REAL(git_object_peel);
  return real(peeled, object, target_type);
}

void git_odb_free(git_odb* db) {
  DL_REAL(git_odb_free);
  real(db);
}

const void* git_odb_object_data(git_odb_object* object) {
  DL_REAL(git_odb_object_data);
  return real(object);
}

void git_odb_object_free(git_odb_object* object) {
  DL_REAL(git_odb_object_free);
  real(object);
}

size_t git_odb_object_size(git_odb_object* object) {
  DL_REAL(git_odb_object_size);
  return real(object);
}

int git_odb_read(git_odb_object** out, git_odb* db, const git_oid* id) {
  DL_REAL(git_odb_read);
  return real(out, db, id);
}

int git_oid_equal(const git_oid* a, const git_oid* b) {
  DL_REAL(git_oid_equal);
  return real(a, b);
}

char* git_oid_tostr(char* out, size_t n, const git_oid* id) {
  DL_REAL(git_oid_tostr);
  return real(out, n, id);
}

void git_reference_free(git_reference* ref) {
  DL_REAL(git_reference_free);
  real(ref);
}

int git_reference_is_branch(const git_reference* ref) {
  DL_REAL(git_reference_is_branch);
  return real(ref);
}

int git_reference_lookup(git_reference** out, git_repository* repo, const char* name) {
  DL_REAL(git_reference_lookup);
  return real(out, repo, name);
}

int git_reference_name_is_valid(int* valid, const char* refname) {
  DL_REAL(git_reference_name_is_valid);
  return real(valid, refname);
}

int git_reference_peel(git_object** out, const git_reference* ref, git_object_t type) {
  DL_REAL(git_reference_peel);
  return real(out, ref, type);
}

const char* git_reference_shorthand(const git_reference* ref) {
  DL_REAL(git_reference_shorthand);
  return real(ref);
}

int git_remote_create_options_init(git_remote_create_options* opts, unsigned int version) {
  DL_REAL(git_remote_create_options_init);
  return real(opts, version);
}

int git_remote_create_with_opts(git_remote** out, const char* url,
                                const git_remote_create_options* opts) {
  DL_REAL(git_remote_create_with_opts);
  return real(out, url, opts);
}

int git_remote_default_branch(git_buf* out, git_remote* remote) {
  DL_REAL(git_remote_default_branch);
  return real(out, remote);
}

int git_remote_fetch(git_remote* remote, const git_strarray* refspecs,
                     const git_fetch_options* opts, const char* reflog_message) {
  DL_REAL(git_remote_fetch);
  return real(remote, refspecs, opts, reflog_message);
}

void git_remote_free(git_remote* remote) {
  DL_REAL(git_remote_free);
  real(remote);
}

int git_remote_lookup(git_remote** out, git_repository* repo, const char* name) {
  DL_REAL(git_remote_lookup);
  return real(out, repo, name);
}

int git_repository_config(git_config** out, git_repository* repo) {
  DL_REAL(git_repository_config);
  return real(out, repo);
}

int git_repository_config_snapshot(git_config** out, git_repository* repo) {
  DL_REAL(git_repository_config_snapshot);
  return real(out, repo);
}

void git_repository_free(git_repository* repo) {
  DL_REAL(git_repository_free);
  real(repo);
}

int git_repository_head(git_reference** out, git_repository* repo) {
  DL_REAL(git_repository_head);
  return real(out, repo);
}

int git_repository_init(git_repository** out, const char* path, unsigned is_bare) {
  DL_REAL(git_repository_init);
  return real(out, path, is_bare);
}

int git_repository_is_bare(const git_repository* repo) {
  DL_REAL(git_repository_is_bare);
  return real(repo);
}

int git_repository_odb(git_odb** out, git_repository* repo) {
  DL_REAL(git_repository_odb);
  return real(out, repo);
}

int git_repository_open_bare(git_repository** out, const char* bare_path) {
  DL_REAL(git_repository_open_bare);
  return real(out, bare_path);
}

int git_repository_open_ext(git_repository** out, const char* path, unsigned int flags,
                            const char* ceiling_dirs) {
  DL_REAL(git_repository_open_ext);
  return real(out, path, flags, ceiling_dirs);
}

int git_repository_set_head(git_repository* repo, const char* refname) {
  DL_REAL(git_repository_set_head);
  return real(repo, refname);
}

const char* git_repository_workdir(const git_repository* repo) {
  DL_REAL(git_repository_workdir);
  return real(repo);
}

int git_revparse_single(git_object** out, git_repository* repo, const char* spec) {
  DL_REAL(git_revparse_single);
  return real(out, repo, spec);
}

void git_revwalk_free(git_revwalk* walk) {
  DL_REAL(git_revwalk_free);
  real(walk);
}

int git_revwalk_hide(git_revwalk* walk, const git_oid* commit_id) {
  DL_REAL(git_revwalk_hide);
  return real(walk, commit_id);
}

int git_revwalk_new(git_revwalk** out, git_repository* repo) {
  DL_REAL(git_revwalk_new);
  return real(out, repo);
}

int git_revwalk_next(git_oid* out, git_revwalk* walk) {
  DL_REAL(git_revwalk_next);
  return real(out, walk);
}

int git_revwalk_push(git_revwalk* walk, const git_oid* id) {
  DL_REAL(git_revwalk_push);
  return real(walk, id);
}

git_filemode_t git_tree_entry_filemode(const git_tree_entry* entry) {
  DL_REAL(git_tree_entry_filemode);
  return real(entry);
}

const git_oid* git_tree_entry_id(const git_tree_entry* entry) {
  DL_REAL(git_tree_entry_id);
  return real(entry);
}

const char* git_tree_entry_name(const git_tree_entry* entry) {
  DL_REAL(git_tree_entry_name);
  return real(entry);
}

void git_tree_free(git_tree* tree) {
  DL_REAL(git_tree_free);
  real(tree);
}

int git_tree_walk(const git_tree* tree, git_treewalk_mode mode, git_treewalk_cb callback,
                  void* payload) {
  DL_REAL(git_tree_walk);
  return real(tree, mode, callback, payload);
}

}  // extern "C"
