#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "provider/provider.h"

namespace driftless::providers::postgres {

class Pool;

/// What the watcher needs to know of one managed object.
struct WatchedObject {
  std::string address;
  std::string kind;      ///< "postgres.role", ...
  std::string name;      ///< the object's name (a grant: its role)
  std::string database;  ///< for schemas, grants and extensions
  std::string schema;    ///< for grants (not on database)
  std::string on;        ///< for grants
};

/// One notification of the event trigger, as sent on the channel (JSON).
struct DdlEvent {
  std::string tag;       ///< "GRANT", "DROP SCHEMA", "ALTER TABLE", ...
  std::string type;      ///< "schema", "table", "extension", ... (lower case)
  std::string schema;    ///< the schema concerned ("" when none)
  std::string identity;  ///< the object's identity, when PostgreSQL gives one
  std::string actor;     ///< "alice", or "alice (as admin)" after SET ROLE
};

/// Parses a notification's payload; false when it is not one of ours.
bool ParseDdlEvent(const std::string& payload, DdlEvent* out);

/// The managed objects of database `db` that event `e` may have changed.
std::vector<std::string> AddressesFor(const std::vector<WatchedObject>& objects,
                                      const std::string& db, const DdlEvent& e);

/// Watches `objects`: LISTEN on the event trigger's channel in each database that holds
/// schemas, grants (not on database) or extensions, and a poll every `poll_ms` of one catalog
/// query for roles, databases and database grants (global objects, which event triggers do not
/// see). Hints from the trigger carry the acting role; polled ones carry none.
Result<std::unique_ptr<provider::Watcher>> WatchObjects(const Pool& pool,
                                                        std::vector<WatchedObject> objects,
                                                        int poll_ms = 1000);

}  // namespace driftless::providers::postgres
