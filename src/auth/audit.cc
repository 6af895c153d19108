#include "auth/audit.h"

namespace driftless::auth {

using value::Value;

Value AuditEntryValue(const state::AuditEntry& e) {
  Value v = Value::MakeObject();
  v.Set("id", Value::Int(e.id));
  v.Set("time", e.time > 0 ? Value::Int(e.time) : Value::Null());
  v.Set("who", Value::String(e.who));
  v.Set("action", Value::String(e.action));
  v.Set("subject", Value::String(e.subject));
  v.Set("environment", Value::String(e.environment));
  v.Set("run_id", e.run_id == 0 ? Value::Null() : Value::Int(e.run_id));
  v.Set("plan_hash", Value::String(e.plan_hash));
  v.Set("result", Value::String(e.result));
  v.Set("reason", Value::String(e.reason));
  v.Set("request_id", Value::String(e.request_id));
  return v;
}

}  // namespace driftless::auth
