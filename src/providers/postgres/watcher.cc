// The postgres watcher. Objects inside a database (schemas, grants on schemas, tables,
// sequences and functions, extensions) are reported by the event trigger that driftless
// installs there (PostgresTarget::Register): one connection per database LISTENs on its channel.
// Event triggers do not fire for global objects (roles, databases, grants on databases): those
// are polled, one catalog query per target and period, comparing a digest of each managed
// object's catalog row with the previous one.

#include "providers/postgres/watcher.h"

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <map>
#include <set>

#include "providers/postgres/connection.h"
#include "providers/postgres/postgres_target.h"
#include "value/value.h"

namespace driftless::providers::postgres {

using value::Value;

bool ParseDdlEvent(const std::string& payload, DdlEvent* out) {
  Result<Value> v = value::ParseJson(payload);
  if (!v.ok() || !v->is_object()) return false;
  auto text = [&](const char* key) {
    const Value* m = v->Find(key);
    return m != nullptr && m->is_string() ? m->as_string() : std::string();
  };
  out->tag = text("tag");
  out->type = text("type");
  out->schema = text("schema");
  out->identity = text("identity");
  const std::string session = text("session_user"), current = text("current_user");
  out->actor = session;
  if (!current.empty() && current != session) out->actor += " (as " + current + ")";
  return !out->tag.empty();
}

std::vector<std::string> AddressesFor(const std::vector<WatchedObject>& objects,
                                      const std::string& db, const DdlEvent& e) {
  std::vector<std::string> out;
  if (e.schema == kHelperSchema) return out;  // driftless's own bookkeeping
  const bool grant = e.tag == "GRANT" || e.tag == "REVOKE";
  // What a GRANT/REVOKE on this object type can change.
  auto grant_matches = [&](const std::string& on) {
    if (e.type == "schema") return on == "schema";
    if (e.type == "table" || e.type == "view" || e.type == "foreign table")
      return on == "tables" || on == "table";
    if (e.type == "sequence") return on == "sequences";
    if (e.type == "function" || e.type == "procedure" || e.type == "routine")
      return on == "functions";
    return on != "database";
  };
  for (const WatchedObject& o : objects) {
    if (o.database != db) continue;
    bool hit = false;
    if (o.kind == kExtensionKind) {
      hit = e.type == "extension";
    } else if (o.kind == kSchemaKind) {
      hit = e.type == "schema" && (e.schema.empty() || e.schema == o.name);
    } else if (o.kind == kGrantKind && o.on != "database") {
      if (grant) {
        hit = grant_matches(o.on);  // PostgreSQL does not say which object: all of the type
      } else {
        // A schema or an object in it created, altered or dropped: the privileges on it (or
        // on all tables of the schema) may differ now.
        // Objects outside schemas (an extension, a cast) touch no grant.
        hit = e.schema.empty() ? e.type == "schema" : e.schema == o.schema;
      }
    }
    if (hit) out.push_back(o.address);
  }
  return out;
}

namespace {

using Clock = std::chrono::steady_clock;

std::string JsonList(const std::set<std::string>& items) {
  Value list = Value::MakeList();
  for (const auto& s : items) list.as_list().push_back(Value::String(s));
  return value::ToJson(list);
}

std::string PollSql(bool authid) {
  // The row of each managed role (with its memberships) and database, as a digest.
  return std::string(
             "SELECT json_build_object("
             "'roles', (SELECT coalesce(json_object_agg(r.rolname, md5(ROW(r.*, "
             "  (SELECT array_agg(m.roleid ORDER BY m.roleid) FROM pg_auth_members m "
             "   WHERE m.member = r.oid))::text)), '{}'::json) FROM ") +
         (authid ? "pg_authid" : "pg_roles") +
         " r WHERE r.rolname IN (SELECT json_array_elements_text($1::json))), "
         "'databases', (SELECT coalesce(json_object_agg(d.datname, md5(ROW(d.datname, d.datdba, "
         "  d.encoding, d.datcollate, d.datctype, d.datallowconn, d.datconnlimit, "
         "  d.datacl)::text)), '{}'::json) FROM pg_database d "
         "  WHERE d.datname IN (SELECT json_array_elements_text($2::json))))";
}

// Per grant key ("tables\nSCHEMA", ...), a digest of the ACLs a grant with that key reads: the
// schema's, or every table's (sequence's, function's) of the schema. $1: the schemas as JSON.
constexpr char kAclDigestSql[] =
    "SELECT coalesce(json_object_agg(k, d), '{}'::json) FROM ("
    " SELECT 'schema' || chr(10) || n.nspname AS k, md5(coalesce(n.nspacl::text, '')) AS d"
    "  FROM pg_namespace n WHERE n.nspname IN (SELECT json_array_elements_text($1::json))"
    " UNION ALL"
    " SELECT CASE WHEN c.relkind = 'S' THEN 'sequences' ELSE 'tables' END || chr(10) || "
    "  n.nspname, md5(string_agg(c.relname || ':' || coalesce(c.relacl::text, ''), ',' "
    "  ORDER BY c.relname))"
    "  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    "  WHERE n.nspname IN (SELECT json_array_elements_text($1::json))"
    "  AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') GROUP BY 1"
    " UNION ALL"
    " SELECT 'functions' || chr(10) || n.nspname, md5(string_agg(p.oid::text || ':' || "
    "  coalesce(p.proacl::text, ''), ',' ORDER BY p.oid))"
    "  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
    "  WHERE n.nspname IN (SELECT json_array_elements_text($1::json))"
    "  AND p.prokind IN ('f', 'a', 'w') GROUP BY 1) x";

// The key of a grant in kAclDigestSql's answer.
std::string AclKey(const WatchedObject& o) {
  std::string group = o.on == "table" ? "tables" : o.on;
  return group + "\n" + o.schema;
}

class PgWatcher final : public provider::Watcher {
 public:
  PgWatcher(std::vector<WatchedObject> objects, int poll_ms)
      : objects_(std::move(objects)), poll_ms_(poll_ms) {}

  Status Start(const Pool& pool) {
    std::set<std::string> dbs;
    for (const WatchedObject& o : objects_) {
      if (o.kind == kRoleKind) {
        roles_.insert(o.name);
        by_key_["roles\n" + o.name].push_back(o.address);
      } else if (o.kind == kDatabaseKind) {
        databases_.insert(o.name);
        by_key_["databases\n" + o.name].push_back(o.address);
      } else if (o.kind == kGrantKind && o.on == "database") {
        databases_.insert(o.database);
        by_key_["databases\n" + o.database].push_back(o.address);
      } else {
        dbs.insert(o.database);
      }
    }
    for (const auto& db : dbs) {
      Result<std::unique_ptr<Connection>> c = pool.Connect(db);
      if (!c.ok()) {
        // A database that does not exist (yet): its objects are missing, the scan reports it.
        continue;
      }
      Status s = (*c)->Exec(std::string("LISTEN ") + kChannel);
      if (!s.ok()) return s;
      Listen l{db, std::move(*c), {}, {}, {}};
      for (const WatchedObject& o : objects_) {
        if (o.database == db && o.kind == kGrantKind && o.on != "database") {
          l.grants.push_back(&o);
          l.schemas.insert(o.schema);
        }
      }
      if (!l.grants.empty()) (void)Digests(l, nullptr, "");  // the baseline
      listens_.push_back(std::move(l));
    }
    if (!roles_.empty() || !databases_.empty()) {
      Result<std::unique_ptr<Connection>> c = pool.Connect("");
      if (!c.ok()) return c.error();
      poll_ = std::move(*c);
      std::vector<provider::WatchHint> ignored;
      Status s = Poll(&ignored);  // the baseline
      if (!s.ok()) return s;
    }
    next_poll_ = Clock::now() + std::chrono::milliseconds(poll_ms_);
    return Status::Ok();
  }

  Status Wait(int timeout_ms, std::vector<provider::WatchHint>* changed, bool* lost) override {
    const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    const size_t before = changed->size();
    while (true) {
      if (poll_ && Clock::now() >= next_poll_) {
        Status s = Poll(changed);
        if (!s.ok()) {
          *lost = true;  // the watch rebuilds its watchers after a full scan
          return Status::Ok();
        }
        next_poll_ = Clock::now() + std::chrono::milliseconds(poll_ms_);
      }
      for (Listen& l : listens_) {
        if (!Drain(l, changed)) {
          *lost = true;
          return Status::Ok();
        }
      }
      const Clock::time_point now = Clock::now();
      if (changed->size() != before || now >= deadline) return Status::Ok();
      Clock::time_point until = poll_ ? std::min(deadline, next_poll_) : deadline;
      int ms = static_cast<int>(
          std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count());
      std::vector<pollfd> fds;
      for (const Listen& l : listens_) fds.push_back({PQsocket(l.c->get()), POLLIN, 0});
      if (fds.empty()) {
        if (ms > 0) ::poll(nullptr, 0, ms);
        continue;
      }
      int n = ::poll(fds.data(), fds.size(), std::max(ms, 0));
      if (n < 0 && errno != EINTR) return MakeError("waiting for PostgreSQL notifications");
    }
  }

  size_t WatchCount() const override { return listens_.size() + (poll_ ? 1 : 0); }

 private:
  struct Listen {
    std::string db;
    std::unique_ptr<Connection> c;
    std::vector<const WatchedObject*> grants;  // not on database
    std::set<std::string> schemas;             // theirs
    std::map<std::string, std::string> acl;    // kAclDigestSql's answer, last time
  };

  // Reads what arrived on one LISTEN connection; false when the connection is lost.
  bool Drain(Listen& l, std::vector<provider::WatchHint>* changed) {
    PGconn* c = l.c->get();
    if (PQconsumeInput(c) == 0 || PQstatus(c) != CONNECTION_OK) return false;
    std::string grant_actor;
    bool grant_seen = false;
    while (PGnotify* n = PQnotifies(c)) {
      DdlEvent e;
      if (ParseDdlEvent(n->extra, &e)) {
        if ((e.tag == "GRANT" || e.tag == "REVOKE") && !l.grants.empty()) {
          // PostgreSQL does not say which object: the ACL digests tell which grants changed.
          grant_seen = true;
          grant_actor = e.actor;
        } else {
          for (auto& a : AddressesFor(objects_, l.db, e))
            changed->push_back({std::move(a), e.actor});
        }
      }
      PQfreemem(n);
    }
    if (grant_seen && !Digests(l, changed, grant_actor)) {
      DdlEvent e{"GRANT", "", "", "", grant_actor};  // no digests: every grant of the database
      for (auto& a : AddressesFor(objects_, l.db, e)) changed->push_back({std::move(a), e.actor});
    }
    return true;
  }

  // Reads the ACL digests of `l`'s grants; hints (with `actor`) the grants whose digest changed
  // when `changed` is given. False when the query failed.
  bool Digests(Listen& l, std::vector<provider::WatchHint>* changed, const std::string& actor) {
    Result<std::optional<Value>> got = l.c->QueryOneJson(kAclDigestSql, {JsonList(l.schemas)});
    if (!got.ok() || !*got || !(*got)->is_object()) return false;
    std::map<std::string, std::string> now;
    for (const auto& [key, digest] : (*got)->as_object()) {
      if (digest.is_string()) now[key] = digest.as_string();
    }
    if (changed != nullptr) {
      for (const WatchedObject* o : l.grants) {
        const std::string key = AclKey(*o);
        auto a = l.acl.find(key);
        auto b = now.find(key);
        bool same =
            (a == l.acl.end()) == (b == now.end()) && (a == l.acl.end() || a->second == b->second);
        if (!same) changed->push_back({o->address, actor});
      }
    }
    l.acl = std::move(now);
    return true;
  }

  // One catalog query: a hint for every global object whose row changed since the last poll.
  Status Poll(std::vector<provider::WatchHint>* changed) {
    Result<std::optional<Value>> got =
        poll_->QueryOneJson(PollSql(authid_), {JsonList(roles_), JsonList(databases_)});
    if (!got.ok() && authid_ && poll_->last_sqlstate() == "42501") {
      authid_ = false;  // without a superuser: no password changes, the rest still
      got = poll_->QueryOneJson(PollSql(false), {JsonList(roles_), JsonList(databases_)});
    }
    if (!got.ok()) return got.error();
    if (!*got || !(*got)->is_object()) return MakeError("unexpected answer to the catalog poll");
    std::map<std::string, std::string> now;
    for (const char* group : {"roles", "databases"}) {
      const Value* g = (*got)->Find(group);
      if (g == nullptr || !g->is_object()) continue;
      for (const auto& [name, digest] : g->as_object()) {
        if (digest.is_string()) now[std::string(group) + "\n" + name] = digest.as_string();
      }
    }
    if (polled_) {
      for (const auto& [key, addresses] : by_key_) {
        auto a = digests_.find(key);
        auto b = now.find(key);
        bool same = (a == digests_.end()) == (b == now.end()) &&
                    (a == digests_.end() || a->second == b->second);
        if (!same) {
          for (const auto& address : addresses) changed->push_back({address, ""});
        }
      }
    }
    digests_ = std::move(now);
    polled_ = true;
    return Status::Ok();
  }

  std::vector<WatchedObject> objects_;
  int poll_ms_;
  std::vector<Listen> listens_;
  std::unique_ptr<Connection> poll_;
  bool authid_ = true;
  bool polled_ = false;
  std::set<std::string> roles_, databases_;
  std::map<std::string, std::vector<std::string>> by_key_;
  std::map<std::string, std::string> digests_;
  Clock::time_point next_poll_{};
};

}  // namespace

Result<std::unique_ptr<provider::Watcher>> WatchObjects(const Pool& pool,
                                                        std::vector<WatchedObject> objects,
                                                        int poll_ms) {
  auto w = std::make_unique<PgWatcher>(std::move(objects), poll_ms);
  Status s = w->Start(pool);
  if (!s.ok()) return s.error();
  return std::unique_ptr<provider::Watcher>(std::move(w));
}

Result<std::unique_ptr<provider::Watcher>> PostgresTarget::Watch(
    const std::vector<provider::WatchItem>& items) {
  std::vector<WatchedObject> objects;
  for (const provider::WatchItem& item : items) {
    WatchedObject o;
    o.address = item.address;
    o.kind = item.kind;
    const std::string resource_name = item.address.substr(item.address.find('/') + 1);
    o.name = SpecString(item.attrs, "name", resource_name);
    o.database = SpecString(item.attrs, "database", default_database());
    o.schema = SpecString(item.attrs, "schema");
    o.on = SpecString(item.attrs, "on");
    objects.push_back(std::move(o));
  }
  if (objects.empty()) return std::unique_ptr<provider::Watcher>();
  return WatchObjects(pool(), std::move(objects));
}

}  // namespace driftless::providers::postgres
