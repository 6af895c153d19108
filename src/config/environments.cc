#include "config/environments.h"

#include <algorithm>
#include <cstdlib>
#include <functional>

namespace driftless::config {

namespace {

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

// Backtracking match of pattern[pi..] against text[ti..]; captures are pushed in order.
bool Match(std::string_view p, size_t pi, std::string_view t, size_t ti,
           std::vector<std::string>& caps) {
  if (pi == p.size()) return ti == t.size();
  if (p[pi] != '*') {
    return ti < t.size() && p[pi] == t[ti] && Match(p, pi + 1, t, ti + 1, caps);
  }
  const bool any = pi + 1 < p.size() && p[pi + 1] == '*';
  const size_t next = pi + (any ? 2 : 1);
  // At least one character; a single `*` stops at '/'. Shortest first, so that "*-*" splits
  // "a-b-c" as {a, b-c} (the first capture is the shortest).
  for (size_t end = ti + 1; end <= t.size(); ++end) {
    if (!any && t[end - 1] == '/') break;
    caps.emplace_back(t.substr(ti, end - ti));
    if (Match(p, next, t, end, caps)) return true;
    caps.pop_back();
  }
  return false;
}

bool HasPlaceholder(std::string_view s) { return s.find('{') != std::string_view::npos; }

bool HasWildcard(std::string_view s) { return s.find('*') != std::string_view::npos; }

// The environment name a rule gives without captures, or "" when it needs captures.
std::string LiteralName(const EnvironmentRule& rule) {
  if (!rule.name.empty()) return HasPlaceholder(rule.name) ? "" : rule.name;
  return HasWildcard(rule.branch) ? "" : EnvironmentNameOfBranch(rule.branch);
}

std::string At(const EnvironmentRule& rule) {
  return " (environment rule at " + rule.pos.ToString() + ")";
}

// Appends the chain of bases of match->rules.front() to match->rules.
Status AddBases(const Project& project, EnvironmentMatch* match) {
  while (true) {
    const EnvironmentRule& last = *match->rules.back();
    if (last.base.empty()) return Status::Ok();
    Result<std::string> base = ExpandTemplate(last.base, match->captures);
    if (!base.ok()) return MakeError("base: " + base.error().message + At(last));
    const EnvironmentRule* found = nullptr;
    for (const auto& r : project.environments) {
      if (LiteralName(r) == *base) {
        found = &r;
        break;
      }
    }
    if (found == nullptr) {
      return MakeError("base " + *base + " names no environment" + At(last));
    }
    for (const EnvironmentRule* seen : match->rules) {
      if (seen == found) {
        std::string chain;
        for (const EnvironmentRule* r : match->rules) chain += LiteralName(*r) + " -> ";
        return MakeError("environment bases form a cycle: " + chain + *base + At(last));
      }
    }
    match->rules.push_back(found);
    match->bases.push_back(*base);
  }
}

// How many captures a branch pattern has (each `*` or `**` is one).
size_t CaptureCount(std::string_view pattern) {
  size_t n = 0;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] != '*') continue;
    ++n;
    if (i + 1 < pattern.size() && pattern[i + 1] == '*') ++i;
  }
  return n;
}

// The template a rule makes names with: its `name:`, or without one the branch pattern as
// EnvironmentNameOfBranch turns a branch into a name, each `*`/`**` a capture in order
// ("feature/*/*" -> "feature-{1}-{2}").
std::string NameTemplate(const EnvironmentRule& rule) {
  if (!rule.name.empty()) return rule.name;
  std::string out;
  size_t n = 0;
  for (size_t i = 0; i < rule.branch.size(); ++i) {
    const char c = rule.branch[i];
    if (c != '*') {
      out += IsNameChar(c) ? c : '-';
      continue;
    }
    out += "{" + std::to_string(++n) + "}";
    if (i + 1 < rule.branch.size() && rule.branch[i + 1] == '*') ++i;
  }
  return out;
}

// The branch a pattern matches with these captures ("feature/*/*", {a, b} -> "feature/a/b").
std::string FillPattern(std::string_view pattern, const std::vector<std::string>& captures) {
  std::string out;
  size_t n = 0;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] != '*') {
      out += pattern[i];
      continue;
    }
    out += captures[n++];
    if (i + 1 < pattern.size() && pattern[i + 1] == '*') ++i;
  }
  return out;
}

// Reads name[ni..] as tmpl[ti..], where {N} is capture N (at least one character; a capture
// used twice reads the same text twice), shortest captures first, like Match. Calls `found`
// for each complete reading until it returns true; `budget` bounds the readings tried.
bool ReadAsTemplate(std::string_view tmpl, size_t ti, std::string_view name, size_t ni,
                    std::vector<std::string>& caps, int& budget,
                    const std::function<bool()>& found) {
  if (--budget < 0) return false;
  if (ti == tmpl.size()) return ni == name.size() && found();
  if (tmpl[ti] != '{') {
    return ni < name.size() && tmpl[ti] == name[ni] &&
           ReadAsTemplate(tmpl, ti + 1, name, ni + 1, caps, budget, found);
  }
  const size_t close = tmpl.find('}', ti);
  if (close == std::string_view::npos) return false;
  const std::string digits(tmpl.substr(ti + 1, close - ti - 1));
  if (digits.empty() || digits.size() > 3 ||
      digits.find_first_not_of("0123456789") != std::string::npos)
    return false;
  const size_t n = static_cast<size_t>(std::atoi(digits.c_str()));
  if (n == 0 || n > caps.size()) return false;
  std::string& cap = caps[n - 1];
  if (!cap.empty()) {
    return name.substr(ni, cap.size()) == cap &&
           ReadAsTemplate(tmpl, close + 1, name, ni + cap.size(), caps, budget, found);
  }
  for (size_t end = ni + 1; end <= name.size(); ++end) {
    cap = std::string(name.substr(ni, end - ni));
    if (ReadAsTemplate(tmpl, close + 1, name, end, caps, budget, found)) return true;
  }
  cap.clear();
  return false;
}

// The rule that gave `name` to a branch, found from the name alone (the branch is gone): a
// rule with captures whose name template reads `name` with every capture known, such that the
// branch those captures make maps to this rule (the first that matches it) with the same
// captures, and whose bases exist. Earlier rules and shorter first captures win. Fills *match.
bool MatchTemplatedName(const Project& project, const std::string& name, EnvironmentMatch* match) {
  for (const auto& rule : project.environments) {
    if (!HasWildcard(rule.branch)) continue;
    std::vector<std::string> caps(CaptureCount(rule.branch));
    int budget = 100000;
    EnvironmentMatch found;
    auto accept = [&]() {
      for (const auto& c : caps) {
        if (c.empty()) return false;  // a capture the name does not show: the branch is unknown
      }
      const std::string branch = FillPattern(rule.branch, caps);
      for (const auto& first : project.environments) {
        std::vector<std::string> again;
        if (!MatchBranchPattern(first.branch, branch, &again)) continue;
        if (&first != &rule || again != caps) return false;
        break;
      }
      EnvironmentMatch m;
      m.name = name;
      m.captures = caps;
      m.rules.push_back(&rule);
      if (!AddBases(project, &m).ok()) return false;
      found = std::move(m);
      return true;
    };
    if (ReadAsTemplate(NameTemplate(rule), 0, name, 0, caps, budget, accept)) {
      *match = std::move(found);
      return true;
    }
  }
  return false;
}

}  // namespace

bool MatchBranchPattern(std::string_view pattern, std::string_view branch,
                        std::vector<std::string>* captures) {
  std::vector<std::string> caps;
  if (!Match(pattern, 0, branch, 0, caps)) return false;
  if (captures != nullptr) {
    for (auto& c : caps) captures->push_back(std::move(c));
  }
  return true;
}

Result<std::string> ExpandTemplate(std::string_view tmpl,
                                   const std::vector<std::string>& captures) {
  std::string out;
  for (size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl[i] != '{') {
      out += tmpl[i];
      continue;
    }
    size_t close = tmpl.find('}', i);
    std::string_view digits =
        close == std::string_view::npos ? "" : tmpl.substr(i + 1, close - i - 1);
    bool numeric = !digits.empty() && digits.size() < 4 &&
                   digits.find_first_not_of("0123456789") == std::string_view::npos;
    if (!numeric) return MakeError("\"" + std::string(tmpl) + "\": use {1}, {2}, ... for captures");
    size_t n = static_cast<size_t>(std::atoi(std::string(digits).c_str()));
    if (n == 0 || n > captures.size()) {
      return MakeError("\"" + std::string(tmpl) + "\" uses {" + std::string(digits) +
                       "} but the branch pattern has " + std::to_string(captures.size()) +
                       " capture" + (captures.size() == 1 ? "" : "s"));
    }
    out += captures[n - 1];
    i = close;
  }
  return out;
}

std::string EnvironmentNameOfBranch(std::string_view branch) {
  std::string out(branch);
  for (char& c : out) {
    if (!IsNameChar(c)) c = '-';
  }
  return out;
}

bool ValidEnvironmentName(std::string_view name) {
  if (name.empty() || name.size() > 100) return false;
  for (char c : name) {
    if (!IsNameChar(c)) return false;
  }
  return true;
}

Result<std::optional<EnvironmentMatch>> MatchBranch(const Project& project,
                                                    const std::string& branch) {
  for (const auto& rule : project.environments) {
    EnvironmentMatch m;
    if (!MatchBranchPattern(rule.branch, branch, &m.captures)) continue;
    m.branch = branch;
    m.rules.push_back(&rule);
    if (rule.name.empty()) {
      m.name = EnvironmentNameOfBranch(branch);
    } else {
      Result<std::string> name = ExpandTemplate(rule.name, m.captures);
      if (!name.ok()) return MakeError("name: " + name.error().message + At(rule));
      m.name = std::move(*name);
    }
    if (!ValidEnvironmentName(m.name)) {
      return MakeError("branch " + branch + " gives the environment name \"" + m.name +
                       "\", which may only use letters, digits, _ and -" + At(rule));
    }
    Status bases = AddBases(project, &m);
    if (!bases.ok()) return bases.error();
    return std::optional<EnvironmentMatch>(std::move(m));
  }
  return std::optional<EnvironmentMatch>();
}

Result<EnvironmentMatch> MatchName(const Project& project, const std::string& name) {
  EnvironmentMatch m;
  m.name = name;
  for (const auto& rule : project.environments) {
    if (LiteralName(rule) != name) continue;
    if (!HasWildcard(rule.branch)) m.branch = rule.branch;
    m.rules.push_back(&rule);
    Status bases = AddBases(project, &m);
    if (!bases.ok()) return bases.error();
    return m;
  }
  MatchTemplatedName(project, name, &m);
  return m;
}

int64_t EnvironmentMatch::ttl_seconds() const {
  for (const EnvironmentRule* r : rules) {
    if (r->ttl.empty()) continue;
    return ParseTtl(r->ttl).value_or(0);
  }
  return 0;
}

std::string EnvironmentMatch::sync() const { return rule() ? rule()->sync : "manual"; }

int EnvironmentMatch::required_approvals() const {
  if (rule() == nullptr) return 0;
  return std::max(rule()->approvals, rule()->is_protected ? 1 : 0);
}

bool EnvironmentMatch::remediates_unapproved() const {
  return required_approvals() == 0 || rule()->remediation == "auto";
}

std::optional<int64_t> ParseTtl(std::string_view text) {
  if (text.size() < 2) return std::nullopt;
  std::string_view digits = text.substr(0, text.size() - 1);
  if (digits.find_first_not_of("0123456789") != std::string_view::npos || digits.size() > 9)
    return std::nullopt;
  int64_t n = std::atoll(std::string(digits).c_str());
  switch (text.back()) {
    case 's':
      return n;
    case 'm':
      return n * 60;
    case 'h':
      return n * 3600;
    case 'd':
      return n * 86400;
    default:
      return std::nullopt;
  }
}

}  // namespace driftless::config
