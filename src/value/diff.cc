#include "value/diff.h"

#include <algorithm>

namespace driftless::value {
namespace {

std::vector<std::string_view> SplitLines(std::string_view s) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < s.size()) {
    size_t nl = s.find('\n', start);
    if (nl == std::string_view::npos) {
      lines.push_back(s.substr(start));
      break;
    }
    lines.push_back(s.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

}  // namespace

std::vector<DiffLine> DiffLines(std::string_view before, std::string_view after) {
  std::vector<std::string_view> a = SplitLines(before), b = SplitLines(after);
  // Trim the common prefix and suffix: most diffs are small edits of long texts.
  size_t pre = 0;
  while (pre < a.size() && pre < b.size() && a[pre] == b[pre]) ++pre;
  size_t suf = 0;
  while (suf < a.size() - pre && suf < b.size() - pre &&
         a[a.size() - 1 - suf] == b[b.size() - 1 - suf])
    ++suf;
  const int n = static_cast<int>(a.size() - pre - suf), m = static_cast<int>(b.size() - pre - suf);
  auto A = [&](int i) { return a[pre + static_cast<size_t>(i)]; };
  auto B = [&](int j) { return b[pre + static_cast<size_t>(j)]; };

  // Myers: keep the V array of every step to backtrack the path.
  const int max = n + m;
  std::vector<std::vector<int>> trace;
  std::vector<int> v(static_cast<size_t>(2 * max + 2), 0);
  const int off = max + 1;
  int found_d = -1;
  for (int d = 0; d <= max; ++d) {
    trace.push_back(v);
    for (int k = -d; k <= d; k += 2) {
      int x;
      if (k == -d || (k != d && v[off + k - 1] < v[off + k + 1]))
        x = v[off + k + 1];
      else
        x = v[off + k - 1] + 1;
      int y = x - k;
      while (x < n && y < m && A(x) == B(y)) {
        ++x;
        ++y;
      }
      v[off + k] = x;
      if (x >= n && y >= m) {
        found_d = d;
        break;
      }
    }
    if (found_d >= 0) break;
  }

  std::vector<DiffLine> middle;
  int x = n, y = m;
  for (int d = found_d; d > 0; --d) {
    const std::vector<int>& pv = trace[static_cast<size_t>(d)];
    int k = x - y;
    int prev_k = (k == -d || (k != d && pv[off + k - 1] < pv[off + k + 1])) ? k + 1 : k - 1;
    int prev_x = pv[off + prev_k];
    int prev_y = prev_x - prev_k;
    while (x > prev_x && y > prev_y) {
      middle.push_back({DiffLine::Op::kContext, std::string(A(x - 1))});
      --x;
      --y;
    }
    if (x == prev_x)
      middle.push_back({DiffLine::Op::kInsert, std::string(B(y - 1))});
    else
      middle.push_back({DiffLine::Op::kDelete, std::string(A(x - 1))});
    x = prev_x;
    y = prev_y;
  }
  while (x > 0 && y > 0) {
    middle.push_back({DiffLine::Op::kContext, std::string(A(x - 1))});
    --x;
    --y;
  }
  std::reverse(middle.begin(), middle.end());

  std::vector<DiffLine> out;
  out.reserve(pre + middle.size() + suf);
  for (size_t i = 0; i < pre; ++i) out.push_back({DiffLine::Op::kContext, std::string(a[i])});
  for (auto& l : middle) out.push_back(std::move(l));
  for (size_t i = a.size() - suf; i < a.size(); ++i)
    out.push_back({DiffLine::Op::kContext, std::string(a[i])});
  return out;
}

std::string UnifiedDiff(std::string_view before, std::string_view after,
                        std::string_view before_label, std::string_view after_label, int context) {
  if (before == after) return "";
  std::string out;
  if (!before_label.empty() || !after_label.empty()) {
    out += "--- ";
    out += before_label;
    out += "\n+++ ";
    out += after_label;
    out += "\n";
  }
  if (before.empty() || after.empty()) {
    // Everything added (a create) or everything removed (a delete): one hunk, no search.
    const bool added = before.empty();
    std::vector<std::string_view> all = SplitLines(added ? after : before);
    const std::string n = std::to_string(all.size());
    out += added ? "@@ -0,0 +1," + n + " @@\n" : "@@ -1," + n + " +0,0 @@\n";
    size_t size = out.size();
    for (std::string_view l : all) size += l.size() + 2;
    out.reserve(size);
    for (std::string_view l : all) {
      out += added ? '+' : '-';
      out += l;
      out += '\n';
    }
    return out;
  }
  std::vector<DiffLine> lines = DiffLines(before, after);
  const int total = static_cast<int>(lines.size());
  int i = 0;
  // Line numbers (1-based) in a and b at position i.
  int a_line = 1, b_line = 1;
  while (i < total) {
    // Find the next change.
    int j = i;
    int aj = a_line, bj = b_line;
    while (j < total && lines[static_cast<size_t>(j)].op == DiffLine::Op::kContext) {
      ++j;
      ++aj;
      ++bj;
    }
    if (j >= total) break;
    int start = std::max(i, j - context);
    int a_start = aj - (j - start), b_start = bj - (j - start);
    // Extend the hunk while changes are within 2*context of each other.
    int end = j;
    int last_change = j;
    while (end < total) {
      if (lines[static_cast<size_t>(end)].op != DiffLine::Op::kContext)
        last_change = end;
      else if (end - last_change > 2 * context)
        break;
      ++end;
    }
    int hunk_end = std::min(total, last_change + context + 1);
    int a_count = 0, b_count = 0;
    std::string body;
    for (int k = start; k < hunk_end; ++k) {
      const DiffLine& l = lines[static_cast<size_t>(k)];
      if (l.op != DiffLine::Op::kInsert) ++a_count;
      if (l.op != DiffLine::Op::kDelete) ++b_count;
      body += static_cast<char>(l.op);
      body += l.text;
      body += '\n';
    }
    out += "@@ -" + std::to_string(a_count ? a_start : a_start - 1) + "," +
           std::to_string(a_count) + " +" + std::to_string(b_count ? b_start : b_start - 1) + "," +
           std::to_string(b_count) + " @@\n";
    out += body;
    // Advance line counters to hunk_end.
    for (int k = i; k < hunk_end; ++k) {
      const DiffLine& l = lines[static_cast<size_t>(k)];
      if (l.op != DiffLine::Op::kInsert) ++a_line;
      if (l.op != DiffLine::Op::kDelete) ++b_line;
    }
    i = hunk_end;
  }
  return out;
}

}  // namespace driftless::value
