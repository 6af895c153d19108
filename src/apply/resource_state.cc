#include "apply/resource_state.h"

#include "base/identity.h"
#include "plan/stored.h"
#include "value/render.h"

namespace driftless::apply {

using value::Value;

state::ResourceState MakeResourceState(const config::Environment& env, const config::Resource& r,
                                       const Value* attrs, const Value& spec, const Value& reported,
                                       const std::string& spec_hash,
                                       std::vector<std::string> depends_on, Value* attrs_out) {
  const provider::ResourceSchema& schema = *env.SchemaOf(r);
  const std::string& salt = env.salt();
  plan::StoredAttrs stored;
  stored.attrs = attrs == nullptr ? value::Protect(spec, salt)
                                  : value::Protect(plan::ProtectLike(*attrs, spec, salt), salt);
  bool any_sensitive = spec.ContainsSensitive();
  if (reported.is_object()) {
    for (const auto& [k, v] : reported.as_object()) {
      const provider::FieldSchema* f = schema.Find(k);
      if (f == nullptr || !f->computed) continue;
      Value computed = v;
      if (any_sensitive || f->sensitive) computed.set_sensitive(true);
      stored.attrs.Set(k, value::Protect(computed, salt));
    }
  }
  stored.keys = plan::ComparedKeys(spec, schema);
  stored.ignore = r.policy.ignore;
  stored.prevent_destroy = r.policy.prevent_destroy;
  state::ResourceState st;
  st.address = r.address;
  st.kind = r.kind;
  st.name = r.name;
  st.target = r.target;
  st.attrs_json = plan::EncodeStored(stored);
  st.spec_hash = spec_hash;
  st.live_digest = plan::LiveDigest(
      plan::Project(plan::ProtectLike(reported, spec, salt), stored.keys, r.policy.ignore));
  st.depends_on = std::move(depends_on);
  st.commit = env.decls().revision;
  st.updated_at = NowUnix();
  if (attrs_out != nullptr) *attrs_out = std::move(stored.attrs);
  return st;
}

}  // namespace driftless::apply
