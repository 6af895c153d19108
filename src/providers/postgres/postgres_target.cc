#include "providers/postgres/postgres_target.h"

#include <algorithm>

#include "base/strings.h"
#include "base/trace.h"
#include "providers/postgres/quote.h"

namespace driftless::providers::postgres {

using value::Value;

std::string SpecString(const Value& spec, std::string_view key, const std::string& fallback) {
  const Value* v = spec.Find(key);
  return v != nullptr && v->is_string() ? v->as_string() : fallback;
}

bool SpecBool(const Value& spec, std::string_view key, bool fallback) {
  const Value* v = spec.Find(key);
  return v != nullptr && v->is_bool() ? v->as_bool() : fallback;
}

std::vector<std::string> SpecStrings(const Value& spec, std::string_view key) {
  std::vector<std::string> out;
  const Value* v = spec.Find(key);
  if (v == nullptr || !v->is_list()) return out;
  for (const auto& item : v->as_list()) {
    if (item.is_string()) out.push_back(item.as_string());
  }
  return out;
}

Value StringList(std::vector<std::string> items) {
  std::sort(items.begin(), items.end());
  items.erase(std::unique(items.begin(), items.end()), items.end());
  Value::List list;
  list.reserve(items.size());
  for (auto& s : items) list.push_back(Value::String(std::move(s)));
  return Value::MakeList(std::move(list));
}

std::string JsonStrings(const std::vector<std::string>& items) {
  Value::List list;
  list.reserve(items.size());
  for (const auto& s : items) list.push_back(Value::String(s));
  return value::ToJson(Value::MakeList(std::move(list)));
}

std::vector<Result<std::optional<Value>>> Failed(size_t n, const Error& error) {
  return std::vector<Result<std::optional<Value>>>(n, Result<std::optional<Value>>(error));
}

std::vector<std::string> NamesOf(const std::vector<Object>& objects) {
  std::vector<std::string> names;
  names.reserve(objects.size());
  for (const Object& o : objects) names.push_back(o.name);
  return names;
}

std::vector<Result<std::optional<Value>>> MatchRows(
    const std::vector<Object>& objects, const Result<std::vector<Value>>& rows,
    const std::function<Value(const Value&, const Object&)>& make) {
  if (!rows.ok()) return Failed(objects.size(), rows.error());
  std::map<std::string, const Value*> by_name = RowsByName(*rows, "name");
  std::vector<Result<std::optional<Value>>> out;
  out.reserve(objects.size());
  for (const Object& o : objects) {
    auto it = by_name.find(o.name);
    out.push_back(it == by_name.end() ? std::optional<Value>()
                                      : std::optional<Value>(make(*it->second, o)));
  }
  return out;
}

std::map<std::string, const Value*> RowsByName(const std::vector<Value>& rows,
                                               std::string_view key) {
  std::map<std::string, const Value*> out;
  for (const Value& row : rows) {
    const Value* k = row.Find(key);
    if (k != nullptr && k->is_string()) out.emplace(k->as_string(), &row);
  }
  return out;
}

namespace {

KindOps OpsOf(const std::string& kind) {
  if (kind == kRoleKind) return RoleOps();
  if (kind == kDatabaseKind) return DatabaseOps();
  if (kind == kSchemaKind) return SchemaOps();
  if (kind == kGrantKind) return GrantOps();
  if (kind == kExtensionKind) return ExtensionOps();
  return {nullptr, nullptr, nullptr, nullptr};
}

std::string ObjectName(const provider::ResourceRequest& req) {
  return SpecString(req.spec, "name", req.name);
}

}  // namespace

PostgresTarget::PostgresTarget(std::string target_name, std::string dsn, DsnParts parts)
    : target_name_(std::move(target_name)),
      dsn_(std::move(dsn)),
      parts_(std::move(parts)),
      pool_(std::make_unique<Pool>(dsn_, parts_.password, parts_.dbname)) {}

std::string PostgresTarget::Describe() const {
  std::string where = parts_.host.empty() ? "local socket" : parts_.host;
  if (!parts_.port.empty()) where += ":" + parts_.port;
  return "postgres server " + where + " (target " + target_name_ + ")";
}

std::string PostgresTarget::Marker(const std::string& address) const {
  return "managed by driftless: " + address + " (target " + target_name_ + ")";
}

Result<std::optional<Lease>> PostgresTarget::ConnectIfExists(const std::string& db) {
  Result<Lease> c = pool_->Get(db);
  if (c.ok()) return std::optional<Lease>(std::move(*c));
  Result<Lease> main = pool_->Get("");
  if (!main.ok()) return c.error();
  Result<std::optional<Value>> exists =
      (*main)->QueryOneJson("SELECT to_json(1) FROM pg_database WHERE datname = $1", {db});
  if (exists.ok() && !*exists) return std::optional<Lease>();
  return c.error();
}

Result<std::optional<Value>> PostgresTarget::Read(const provider::ResourceRequest& req) const {
  KindOps ops = OpsOf(req.kind);
  if (ops.read == nullptr) return MakeError("the postgres provider has no kind " + req.kind);
  Object o{req.kind + "/" + req.name, ObjectName(req), req.spec};
  return ops.read(const_cast<PostgresTarget&>(*this), o);
}

std::vector<Result<std::optional<Value>>> PostgresTarget::ReadMany(
    const std::vector<provider::ResourceRequest>& reqs) const {
  std::vector<Result<std::optional<Value>>> out(reqs.size(), std::optional<Value>());
  std::map<std::string, std::vector<size_t>> by_kind;  // indices in `reqs`
  for (size_t i = 0; i < reqs.size(); ++i) by_kind[reqs[i].kind].push_back(i);
  for (const auto& [kind, indices] : by_kind) {
    KindOps ops = OpsOf(kind);
    if (ops.read_many == nullptr) {
      for (size_t i : indices) out[i] = MakeError("the postgres provider has no kind " + kind);
      continue;
    }
    std::vector<std::string> addresses;
    std::vector<Object> objects;
    addresses.reserve(indices.size());
    objects.reserve(indices.size());
    for (size_t i : indices) addresses.push_back(reqs[i].kind + "/" + reqs[i].name);
    for (size_t k = 0; k < indices.size(); ++k) {
      const provider::ResourceRequest& req = reqs[indices[k]];
      objects.push_back({addresses[k], ObjectName(req), req.spec});
    }
    TraceSpan span("postgres: read " + std::to_string(objects.size()) + " " + kind);
    std::vector<Result<std::optional<Value>>> got =
        ops.read_many(const_cast<PostgresTarget&>(*this), objects);
    for (size_t k = 0; k < indices.size(); ++k) out[indices[k]] = std::move(got[k]);
  }
  return out;
}

Result<Value> PostgresTarget::Create(const provider::ResourceRequest& req, bool adopt) {
  KindOps ops = OpsOf(req.kind);
  if (ops.read == nullptr) return MakeError("the postgres provider has no kind " + req.kind);
  Object o{req.kind + "/" + req.name, ObjectName(req), req.spec};
  Result<std::optional<Value>> live = ops.read(*this, o);
  if (!live.ok()) return live.error();
  // A grant is not an object of its own: privileges the role already holds are taken over.
  if (*live && !adopt && req.kind != kGrantKind) {
    return MakeError(req.kind + " " + Quote(o.name) +
                     " already exists; set policy.adopt: true to take it over");
  }
  Status s = ops.apply(*this, o, *live, nullptr);
  if (!s.ok()) return s.error();
  Result<std::optional<Value>> after = ops.read(*this, o);
  if (!after.ok()) return after.error();
  if (!*after)
    return MakeError(req.kind + " " + Quote(o.name) +
                     " is missing right after its "
                     "creation (dropped at once by someone else?)");
  return std::move(**after);
}

Result<Value> PostgresTarget::Update(const provider::ResourceRequest& req, const Value& prior) {
  KindOps ops = OpsOf(req.kind);
  if (ops.read == nullptr) return MakeError("the postgres provider has no kind " + req.kind);
  Object o{req.kind + "/" + req.name, ObjectName(req), req.spec};
  Result<std::optional<Value>> live = ops.read(*this, o);
  if (!live.ok()) return live.error();
  if (!*live) {
    // Renamed in the declaration: the object is still under its old name.
    std::string old_name = SpecString(prior, "name", req.name);
    if (old_name != o.name) {
      Object old{o.address, old_name, prior};
      Result<std::optional<Value>> old_live = ops.read(*this, old);
      if (!old_live.ok()) return old_live.error();
      if (!*old_live) return MakeError(req.kind + " " + Quote(old_name) + " does not exist");
    }
  }
  Status s = ops.apply(*this, o, *live, &prior);
  if (!s.ok()) return s.error();
  Result<std::optional<Value>> after = ops.read(*this, o);
  if (!after.ok()) return after.error();
  if (!*after) return MakeError(req.kind + " " + Quote(o.name) + " is missing after the update");
  return std::move(**after);
}

Status PostgresTarget::Delete(const provider::ResourceRequest& prior) {
  KindOps ops = OpsOf(prior.kind);
  if (ops.remove == nullptr) return MakeError("the postgres provider has no kind " + prior.kind);
  Object o{prior.kind + "/" + prior.name, ObjectName(prior), prior.spec};
  return ops.remove(*this, o);
}

Status PostgresTarget::Register(const std::string& db, const std::string& address) {
  const std::string key = db + "\n" + address;
  {
    std::lock_guard<std::mutex> lock(registered_mu_);
    if (registered_.count(key)) return Status::Ok();
  }
  Result<Lease> c = pool_->Get(db);
  if (!c.ok()) return c.error();
  const std::string schema = QuoteIdent(kHelperSchema);
  bool installed;
  {
    std::lock_guard<std::mutex> lock(registered_mu_);
    installed = installed_.count(db) > 0;
  }
  if (installed) {
    // Installed by this process already: only the object is added to the list.
    Status s = (*c)->Exec("INSERT INTO " + schema + ".managed VALUES (" + QuoteLiteral(address) +
                          ") ON CONFLICT DO NOTHING");
    if (s.ok()) {
      std::lock_guard<std::mutex> lock(registered_mu_);
      registered_.insert(key);
      return s;
    }
    // Removed meanwhile (the last managed object was deleted): installed again below.
  }
  // The functions notify the channel with the command tag, the object and the roles. They run
  // with search_path = pg_catalog so that no object of the user's can stand in for them.
  const std::string body_common =
      "'session_user', session_user::text, 'current_user', current_user::text, "
      "'database', current_database()";
  std::string sql =
      "SELECT pg_advisory_xact_lock(7346285513);\n"
      "CREATE SCHEMA IF NOT EXISTS " +
      schema +
      ";\n"
      "COMMENT ON SCHEMA " +
      schema + " IS " +
      QuoteLiteral(
          "driftless: the event trigger that reports changes to driftless watch "
          "(docs/postgres.md); removed when driftless manages nothing here") +
      ";\n"
      "CREATE TABLE IF NOT EXISTS " +
      schema +
      ".managed (address text PRIMARY KEY);\n"
      "CREATE OR REPLACE FUNCTION " +
      schema +
      ".notify_ddl() RETURNS event_trigger\n"
      "LANGUAGE plpgsql SET search_path = pg_catalog AS $fn$\n"
      "DECLARE r record;\n"
      "BEGIN\n"
      "  FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP\n"
      "    PERFORM pg_notify('" +
      std::string(kChannel) +
      "', json_build_object(\n"
      "      'tag', r.command_tag, 'type', lower(r.object_type),\n"
      "      'schema', CASE WHEN r.object_type = 'schema'\n"
      "                THEN (SELECT nspname FROM pg_namespace WHERE oid = r.objid)\n"
      "                ELSE r.schema_name END,\n"
      "      'identity', r.object_identity, " +
      body_common +
      ")::text);\n"
      "  END LOOP;\n"
      "END $fn$;\n"
      "CREATE OR REPLACE FUNCTION " +
      schema +
      ".notify_drop() RETURNS event_trigger\n"
      "LANGUAGE plpgsql SET search_path = pg_catalog AS $fn$\n"
      "DECLARE r record;\n"
      "BEGIN\n"
      "  FOR r IN SELECT * FROM pg_event_trigger_dropped_objects() LOOP\n"
      "    PERFORM pg_notify('" +
      std::string(kChannel) +
      "', json_build_object(\n"
      "      'tag', tg_tag, 'type', lower(r.object_type),\n"
      "      'schema', CASE WHEN r.object_type = 'schema' THEN r.object_name\n"
      "                ELSE r.schema_name END,\n"
      "      'identity', r.object_identity, " +
      body_common +
      ")::text);\n"
      "  END LOOP;\n"
      "END $fn$;\n"
      "DO $do$ BEGIN\n"
      "  IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'driftless_ddl') THEN\n"
      "    CREATE EVENT TRIGGER driftless_ddl ON ddl_command_end\n"
      "      EXECUTE FUNCTION " +
      schema +
      ".notify_ddl();\n"
      "  END IF;\n"
      "  IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'driftless_drop') THEN\n"
      "    CREATE EVENT TRIGGER driftless_drop ON sql_drop\n"
      "      EXECUTE FUNCTION " +
      schema +
      ".notify_drop();\n"
      "  END IF;\n"
      "END $do$;\n"
      "INSERT INTO " +
      schema + ".managed VALUES (" + QuoteLiteral(address) + ") ON CONFLICT DO NOTHING;";
  Status s = (*c)->Exec(sql);
  if (!s.ok()) {
    // Event triggers need a superuser: without one, drift here is found by scans only.
    if ((*c)->last_sqlstate() == "42501") return Status::Ok();
    return MakeError("installing the event trigger in database " + Quote(db) + ": " +
                     s.error().message);
  }
  std::lock_guard<std::mutex> lock(registered_mu_);
  registered_.insert(key);
  installed_.insert(db);
  return Status::Ok();
}

Status PostgresTarget::Unregister(const std::string& db, const std::string& address) {
  {
    std::lock_guard<std::mutex> lock(registered_mu_);
    registered_.erase(db + "\n" + address);
    installed_.erase(db);  // perhaps removed now
  }
  Result<Lease> c = pool_->Get(db);
  if (!c.ok()) return Status::Ok();  // the database is gone, and the trigger with it
  const std::string schema = QuoteIdent(kHelperSchema);
  Connection& conn = **c;
  // No user text inside a DO block: the address is a parameter of its own statement.
  Status s = conn.Exec("BEGIN; SELECT pg_advisory_xact_lock(7346285513)");
  if (!s.ok()) return s;
  Result<std::vector<Value>> left = conn.QueryJson(
      "SELECT to_json(to_regclass('" + std::string(kHelperSchema) + ".managed') IS NOT NULL)");
  if (left.ok() && !left->empty() && left->front().is_bool() && left->front().as_bool()) {
    left = conn.QueryJson("WITH d AS (DELETE FROM " + schema +
                              ".managed WHERE address = $1) "
                              "SELECT to_json(count(*)) FROM " +
                              schema + ".managed WHERE address <> $1",
                          {address});
    if (left.ok() && !left->empty() && left->front().is_int() && left->front().as_int() == 0) {
      s = conn.Exec(
          "DROP EVENT TRIGGER IF EXISTS driftless_ddl; "
          "DROP EVENT TRIGGER IF EXISTS driftless_drop; DROP SCHEMA " +
          schema + " CASCADE");
      if (!s.ok()) left = s.error();
    }
  }
  if (!left.ok()) {
    const std::string state = conn.last_sqlstate();
    (void)conn.Exec("ROLLBACK");
    if (state == "42501") return Status::Ok();
    return left.error();
  }
  return conn.Exec("COMMIT");
}

}  // namespace driftless::providers::postgres
