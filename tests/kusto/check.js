#!/usr/bin/env node
// Parses and semantically analyses KQL with Microsoft's own Kusto language
// service (@kusto/language-service-next), against declared database schemas.
//
// stdin:  {"schemas": {"<schema>": {"<table>": [["column", "type"], ...]}},
//          "queries": [{"id": "...", "schema": "<schema>", "text": "..."}]}
// stdout: {"results": [{"id": "...", "diagnostics": [{severity, code, message, line, column, text}]}]}
// exit:   0 when no query has any diagnostic, 1 when one has, 2 on bad input.
//
// The pytest wrapper (tests/unit/test_kql_kusto_parser.py) builds the input
// from kql/schemas.py and the exact texts botctl sends, so this script holds
// no schema or query of its own.
"use strict";

require("@kusto/language-service-next/bridge.js");
require("@kusto/language-service-next/Kusto.Language.Bridge.js");

/* global Kusto, Bridge */
const K = Kusto.Language;
const S = Kusto.Language.Symbols;

function globalsFor(tables) {
  const symbols = Object.entries(tables).map(([name, columns]) => {
    const schema = "(" + columns.map(([col, type]) => `${col}:${type}`).join(", ") + ")";
    return S.TableSymbol.From(schema).WithName(name);
  });
  // DatabaseSymbol(name, members, isOpen=false): a closed database, so an
  // unknown table is an error rather than an open-schema guess.
  const database = new S.DatabaseSymbol.$ctor1("appinsights", symbols, false);
  return K.GlobalState.Default.WithDatabase(database);
}

function lineAndColumn(text, offset) {
  const before = text.slice(0, offset).split("\n");
  return [before.length, before[before.length - 1].length + 1];
}

function analyse(globals, text) {
  const code = K.KustoCode.ParseAndAnalyze(text, globals);
  // Combined diagnostics: syntax and semantic errors plus the analyzers'
  // warnings (the ones Kusto Explorer and the portal show as squiggles).
  const service = new K.Editor.KustoCodeService.ctor(code);
  const diagnostics = Bridge.toArray(service.GetCombinedDiagnostics(true));
  return diagnostics.map((d) => {
    const [line, column] = lineAndColumn(text, d.Start);
    return {
      severity: d.Severity,
      code: d.Code,
      message: d.Message,
      line,
      column,
      text: text.substr(d.Start, d.Length),
    };
  });
}

function main(input) {
  let request;
  try {
    request = JSON.parse(input);
  } catch (err) {
    process.stderr.write(`check.js: stdin is not JSON: ${err.message}\n`);
    return 2;
  }
  const globals = {};
  for (const [schema, tables] of Object.entries(request.schemas || {})) {
    globals[schema] = globalsFor(tables);
  }
  const results = [];
  for (const query of request.queries || []) {
    if (!globals[query.schema]) {
      process.stderr.write(`check.js: query ${query.id} names unknown schema ${query.schema}\n`);
      return 2;
    }
    results.push({ id: query.id, diagnostics: analyse(globals[query.schema], query.text) });
  }
  process.stdout.write(JSON.stringify({ results }, null, 2) + "\n");
  return results.some((r) => r.diagnostics.length) ? 1 : 0;
}

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => { process.exitCode = main(input); });
