#include "plan/plan.h"

#include "base/hash.h"
#include "base/strings.h"

namespace driftless::plan {

std::string_view ActionName(Action a) {
  switch (a) {
    case Action::kNoop:
      return "no-op";
    case Action::kCreate:
      return "create";
    case Action::kUpdate:
      return "update";
    case Action::kReplace:
      return "replace";
    case Action::kDelete:
      return "delete";
    case Action::kHeal:
      return "heal";
    case Action::kRecord:
      return "record";
  }
  return "?";
}

const Change& Plan::Complete(const Change& c, Change& scratch) const {
  if (!c.lean || !complete) return c;
  scratch = c;
  complete(scratch);
  return scratch;
}

void Plan::CompleteAll() {
  if (complete) {
    for (Change& c : changes) {
      if (c.lean) complete(c);
    }
  }
  complete = nullptr;
  lean_spec_hash = nullptr;
}

size_t Plan::Count(Action a) const {
  size_t n = a == Action::kNoop ? unchanged : 0;
  for (const auto& c : changes) n += c.action == a;
  return n;
}

bool Plan::HasChanges() const {
  for (const auto& c : changes)
    if (c.action != Action::kNoop) return true;
  return false;
}

size_t Plan::DriftCount() const {
  size_t n = 0;
  for (const auto& c : changes) n += c.drift;
  return n;
}

std::string Plan::Hash() const {
  Sha256 h;
  h.Update(environment);
  h.Update("\n");
  h.Update(decl_hash);
  h.Update("\n");
  h.Update(std::to_string(state_serial));
  h.Update(destroy ? "\ndestroy\n" : "\napply\n");
  h.Update(revision);
  h.Update("\n");
  for (const auto& s : steps) {
    h.Update("step " + s.commit + " " + Join(s.transitions, ";") + "\n");
  }
  for (const auto& c : changes) {
    if (c.action == Action::kNoop) continue;
    h.Update(c.address);
    h.Update(" ");
    h.Update(ActionName(c.action));
    h.Update(" ");
    h.Update(SpecHashOf(c));
    h.Update(" ");
    h.Update(value::ToJson(c.live));
    h.Update("\n");
  }
  return h.HexDigest();
}

std::string Plan::Summary() const {
  return std::to_string(Count(Action::kCreate)) + " to create, " +
         std::to_string(Count(Action::kUpdate)) + " to update, " +
         std::to_string(Count(Action::kReplace)) + " to replace, " +
         std::to_string(Count(Action::kDelete)) + " to delete, " +
         std::to_string(Count(Action::kHeal)) + " to heal, " +
         (Count(Action::kRecord) ? std::to_string(Count(Action::kRecord)) + " to record, " : "") +
         std::to_string(Count(Action::kNoop)) + " unchanged";
}

}  // namespace driftless::plan
