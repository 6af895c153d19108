#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/diagnostics.h"
#include "value/value.h"

namespace driftless::yaml {

/// One document of a YAML stream.
struct YamlDocument {
  value::Value root;  ///< marks (line, column; 1-based) on every node
  uint32_t line = 0;  ///< where the document starts
};

/// Parses every document of a YAML stream (libyaml's event parser) into values.
/// - plain scalars follow the YAML 1.2 core schema: null/~/empty, true/false, integers
///   (decimal, 0x hex, 0o octal), floats (incl. .inf/.nan), anything else a string;
///   quoted and block scalars are always strings; tag !!str forces a string;
/// - anchors and aliases are resolved (a document expanding past 1,000,000 nodes is an error);
/// - mapping keys must be scalars; a duplicate key is an error;
/// - empty documents (only comments) are skipped.
/// Every problem goes to `diags` as "file:line:col: ..." and parsing of that document stops;
/// the documents before it are returned.
std::vector<YamlDocument> ParseYaml(std::string_view text, const std::string& file,
                                    Diagnostics& diags);

}  // namespace driftless::yaml
