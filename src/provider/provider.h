#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "value/value.h"

namespace driftless::provider {

/// The type a spec field accepts.
enum class FieldType { kString, kBool, kInt, kList, kMap, kAny };

/// "string", "bool", ... for messages.
std::string_view FieldTypeName(FieldType t);

/// One field of a kind's spec, declared as data.
struct FieldSchema {
  std::string name;
  FieldType type = FieldType::kString;
  bool required = false;   ///< must be declared
  bool computed = false;   ///< set by the provider; declaring it is an error
  bool force_new = false;  ///< a change replaces the object (delete, then create)
  bool sensitive = false;  ///< always treated as a secret (a password)
  std::string description;
  /// Not readable from the live object (a `source:` file name): never compared with live; a
  /// change is seen through the spec hash only.
  bool write_only = false;
};

/// The schema of one kind ("file.file").
struct ResourceSchema {
  std::string kind;
  std::string description;
  std::vector<FieldSchema> fields;

  const FieldSchema* Find(std::string_view field) const;
};

/// A problem with one field of a spec: `field` is the path inside spec ("path", "env.DEBUG").
struct FieldError {
  std::string field;
  std::string message;
};

/// Reads a file of the repository at the declarations' revision (for `source:` fields).
using ReadRepoFile = std::function<Result<std::string>(const std::string& path)>;

/// One resource as a provider sees it.
struct ResourceRequest {
  std::string kind;   ///< "file.file"
  std::string name;   ///< the resource's name (its identity within the kind)
  value::Value spec;  ///< the object's attributes (interpolated, normalised)
};

/// What Target::ReadIfChanged found.
struct StampedRead {
  /// The object still has the stamp that was given: it was not read, and `live` is empty.
  bool unchanged = false;
  /// Otherwise what Read returns (std::nullopt: the object does not exist).
  std::optional<value::Value> live;
  /// The stamp of the object as it was just read, for the next call; "" when the target has
  /// none, or cannot trust it yet (the object changed within the timestamp granularity of the
  /// read, so a further change might not change the stamp).
  std::string stamp;
};

/// A configured connection to one system (one `targets:` entry of driftless.yaml).
/// Every method may be called from several threads at once for different resources.
/// One object to watch: its address and its last applied attributes (which identify it).
struct WatchItem {
  std::string address;
  std::string kind;
  value::Value attrs;
};

/// One hint of a Watcher: a watched object that may have changed, and who changed it when the
/// target can tell (a PostgreSQL role from an event trigger; "" for files and for objects the
/// target only polls).
struct WatchHint {
  std::string address;
  std::string actor;
};

/// Event-driven hints that watched objects may have changed outside driftless (drift within a
/// second instead of at the next scan). A hint is never a verdict: the engine reads the object
/// again and compares; the actor of a hint becomes the drift's actor when the check finds drift.
/// Used by one thread (Interrupt excepted).
class Watcher {
 public:
  virtual ~Watcher() = default;
  /// Waits up to `timeout_ms` for events and appends the objects that may have changed
  /// (duplicates possible). Sets *lost when events were missed (a queue overflow, a watched
  /// folder that went away, a lost connection): the caller then checks everything.
  virtual Status Wait(int timeout_ms, std::vector<WatchHint>* changed, bool* lost) = 0;
  /// How many watches it holds (kernel watches for files, LISTEN connections and polled
  /// catalogs for PostgreSQL).
  virtual size_t WatchCount() const = 0;
  /// True when Interrupt ends a Wait at once: the caller may then wait until its next scan
  /// and interrupt the wait to stop. A watcher that cannot is waited on for short periods.
  virtual bool Interruptible() const { return false; }
  /// Ends a Wait in progress at once (or the next one, when none is); from any thread.
  virtual void Interrupt() {}
};

/// Where a configured target is used. Objects a provider creates carry a marker of these and
/// of the resource where the system allows (container labels).
struct TargetContext {
  std::string project;
  std::string environment;
};

class Target {
 public:
  virtual ~Target() = default;

  /// Called once, right after Configure, with the project and environment the target serves.
  virtual void SetContext(const TargetContext& context) { (void)context; }

  /// What an update or heal of `kind` from `live` to `planned` (both as Read reports them,
  /// compared fields only) does, in the system's words, when it is not a change in place:
  /// "start", "stop", "rename", "recreate" (containers). Shown with the plan's action; "" for a
  /// plain update.
  virtual std::string UpdateOperation(const std::string& kind, const value::Value& live,
                                      const value::Value& planned) const {
    (void)kind;
    (void)live;
    (void)planned;
    return "";
  }

  /// Starts watching `items` for changes; a null pointer when the target cannot watch (the
  /// engine then relies on its periodic full scan).
  virtual Result<std::unique_ptr<Watcher>> Watch(const std::vector<WatchItem>& items) {
    (void)items;
    return std::unique_ptr<Watcher>();
  }

  /// Checks a declared spec beyond its schema (a path escaping the root, a bad mode) and
  /// returns it normalised: defaults filled where the provider always manages them,
  /// `source:` files read through `read_file`, values in canonical form ("644" -> "0644").
  /// The result is what is stored as applied and compared with live.
  virtual Result<value::Value> Normalize(const std::string& kind, const value::Value& spec,
                                         const ReadRepoFile& read_file,
                                         std::vector<FieldError>& errors) const = 0;

  /// Reads the live object that `req.spec` identifies; std::nullopt when it does not exist.
  /// The result holds every field the kind manages plus its computed fields, in the same form
  /// Normalize produces, so that the two compare field by field.
  virtual Result<std::optional<value::Value>> Read(const ResourceRequest& req) const = 0;

  /// Read, unless the object still has `stamp`, a cheap fingerprint that an earlier call
  /// returned for it (for files: device, inode, size, modification and change times): then it
  /// is not read at all. "" never matches. The engine keeps stamps in state and passes "" when it
  /// must read everything (`drift --full`, the watch's periodic scan). The default has no
  /// stamps: it reads.
  virtual Result<StampedRead> ReadIfChanged(const ResourceRequest& req,
                                            std::string_view stamp) const {
    (void)stamp;
    Result<std::optional<value::Value>> live = Read(req);
    if (!live.ok()) return live.error();
    StampedRead out;
    out.live = std::move(*live);
    return out;
  }

  /// Whether ReadMany reads many objects at a lower cost than Read one at a time (a catalog
  /// query per kind instead of one per object). The engine then gives a plan's reads of this
  /// target to ReadMany, except when it reads a single object (a watch's check).
  virtual bool ReadsInBatches() const { return false; }

  /// What Read returns for each of `reqs`, in their order, read together. An entry may fail on
  /// its own; a failed query fails the entries it was for. The default calls Read for each.
  virtual std::vector<Result<std::optional<value::Value>>> ReadMany(
      const std::vector<ResourceRequest>& reqs) const {
    std::vector<Result<std::optional<value::Value>>> out;
    out.reserve(reqs.size());
    for (const ResourceRequest& req : reqs) out.push_back(Read(req));
    return out;
  }

  /// Creates the object; returns its attributes as Read would after the call.
  /// When `adopt` is true, an existing object of the same identity is taken over and made equal
  /// to the spec; otherwise an existing object is an error.
  virtual Result<value::Value> Create(const ResourceRequest& req, bool adopt) = 0;

  /// Makes the existing object (`prior`: its last applied attributes) equal to `req.spec`.
  virtual Result<value::Value> Update(const ResourceRequest& req, const value::Value& prior) = 0;

  /// Deletes the object described by its last applied attributes. Deleting a missing object
  /// succeeds.
  virtual Status Delete(const ResourceRequest& prior) = 0;

  /// A short description for messages ("file root /srv/shop/production").
  virtual std::string Describe() const = 0;

  /// For `driftless state import`: reads the existing object that `id` names, to take it under
  /// management without changing it. `id` is in the kind's own import form (a file's path, a
  /// role's name, ...: docs/state.md#import); `declared` is the declaration it is imported
  /// into (normalised; it may hold unknowns). Returns what Read reports for `declared` once its
  /// identity is the ID's (ImportSpec), or std::nullopt when no such object exists. Fails, and
  /// reads nothing, when `id` does not parse (the message says the form) or names another object
  /// than the declaration does. Never writes to the target. The default: the kind cannot be
  /// imported.
  virtual Result<std::optional<value::Value>> ReadById(const std::string& id,
                                                       const ResourceRequest& declared) const {
    (void)id;
    return MakeError(declared.kind + " cannot be imported: its provider cannot read by ID");
  }

  /// For objects that nest (files in folders): the object's slash-separated path, else "".
  /// The engine orders a resource after the resource of the same target whose path is a parent
  /// of its path (created after it, deleted before it), like Puppet's autorequire.
  virtual std::string HierarchyPath(const std::string& kind, const value::Value& spec) const {
    (void)kind;
    (void)spec;
    return "";
  }

  /// Called once per resource, after normalisation, with the hierarchy paths (relative to this
  /// one's) of the other resources of the same target that lie inside it. A folder that purges
  /// unmanaged entries keeps these. Returns the spec to use (default: unchanged).
  virtual value::Value WithDescendants(const std::string& kind, value::Value spec,
                                       const std::vector<std::string>& relative_paths) const {
    (void)kind;
    (void)relative_paths;
    return spec;
  }
};

/// For Target::ReadById: `declared.spec` with the fields of `identity` (what the import ID
/// `id` names: a path; a name and a database; ...). A field the declaration leaves unknown or
/// absent takes the ID's value; `name` defaults to the resource's name, as everywhere. When the
/// declaration sets a field to another value the ID names another object than the declaration,
/// and the error says which fields differ and, when `declared_id` is not empty, the ID of the
/// declared object.
Result<value::Value> ImportSpec(const ResourceRequest& declared, const std::string& id,
                                const value::Value& identity, const std::string& declared_id);

/// A kind of system driftless manages. One instance per process, registered once.
class Provider {
 public:
  virtual ~Provider() = default;

  /// The provider's name, the first part of its kinds ("file").
  virtual std::string Name() const = 0;
  /// The kinds it manages, with their spec fields.
  virtual std::vector<ResourceSchema> Schemas() const = 0;
  /// The settings a target of this provider accepts (`root`, `dsn`, ...).
  virtual std::vector<FieldSchema> TargetSchema() const = 0;
  /// Connects a target from its interpolated settings. Does no I/O beyond checking them.
  virtual Result<std::unique_ptr<Target>> Configure(const std::string& target_name,
                                                    const value::Value& settings) const = 0;
};

/// The providers known to this process.
class Registry {
 public:
  void Register(std::unique_ptr<Provider> p);
  const Provider* FindProvider(std::string_view name) const;
  /// The schema of a kind ("file.file"), or nullptr.
  const ResourceSchema* FindKind(std::string_view kind) const;
  /// All kinds, sorted, for messages ("known kinds: ...").
  std::vector<std::string> Kinds() const;

 private:
  std::vector<std::unique_ptr<Provider>> providers_;
  std::vector<ResourceSchema> schemas_;
};

/// The reads of one plan or check on the calling thread: the planner opens one around each of
/// its threads' reads. A target may keep what it learnt for later reads of the same scope (the
/// file provider keeps the folders it resolved open); the end of the thread's outermost scope
/// releases it, so nothing is held between plans or checks. Scopes nest; outside any scope a
/// target keeps nothing.
class ReadScope {
 public:
  ReadScope();
  ~ReadScope();
  ReadScope(const ReadScope&) = delete;
  ReadScope& operator=(const ReadScope&) = delete;

  /// Whether the calling thread is inside a scope.
  static bool Active();
  /// Runs `release` when the calling thread's outermost scope ends; only inside a scope.
  static void AtEnd(void (*release)());
};

}  // namespace driftless::provider
