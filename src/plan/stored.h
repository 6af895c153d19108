#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "provider/provider.h"
#include "value/value.h"

namespace driftless::plan {

/// The planner's record of one applied resource, kept as ResourceState::attrs_json.
struct StoredAttrs {
  value::Value attrs;               ///< declared spec + computed fields, secrets protected
  std::vector<std::string> keys;    ///< the fields compared with live
  std::vector<std::string> ignore;  ///< policy.ignore paths in force when applied
  bool prevent_destroy = false;
};

/// The spec hash of a resource taken over by `state import` whose declaration differs from the
/// live object it recorded: never the hash of a spec, so the next plan compares in full and
/// plans the update the declaration asks for.
inline constexpr char kImportedSpecHash[] = "imported";

std::string EncodeStored(const StoredAttrs& s);
Result<StoredAttrs> DecodeStored(const std::string& json);

/// The fields compared with live: the declared ones the provider manages (not computed, not
/// write-only).
std::vector<std::string> ComparedKeys(const value::Value& spec,
                                      const provider::ResourceSchema& schema);

/// The members of `attrs` named in `keys`, with `ignore` paths ("spec.env.DEBUG") removed.
value::Value Project(const value::Value& attrs, const std::vector<std::string>& keys,
                     const std::vector<std::string>& ignore);

/// Marks as sensitive the members of `live` whose counterpart in `like` is sensitive, then
/// protects them with `salt`: live values of secrets become comparable salted hashes.
value::Value ProtectLike(value::Value live, const value::Value& like, std::string_view salt);

/// Digest of projected, protected live attributes, as stored in ResourceState::live_digest.
std::string LiveDigest(const value::Value& projected);

}  // namespace driftless::plan
