// The protocol-rules extension: the .rules language (highlighting, comments, brackets) and a
// client of the language server `protocol-rules lsp` (diagnostics as you type, hover,
// completion, go to definition, references, outline, formatting). docs/editors.md.
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function serverOptions() {
  const config = vscode.workspace.getConfiguration("protocolRules");
  const folder = (vscode.workspace.workspaceFolders || [])[0];
  const expand = (text) =>
    folder ? text.replace(/\$\{workspaceFolder\}/g, folder.uri.fsPath) : text;
  const command = expand(config.get("server.command") || "protocol-rules");
  const args = (config.get("server.args") || ["lsp"]).map(expand);
  return { command, args, transport: TransportKind.stdio };
}

async function start(context) {
  client = new LanguageClient(
    "protocolRules",
    "Protocol rules",
    serverOptions(),
    {
      documentSelector: [
        { scheme: "file", language: "rules" },
        { scheme: "untitled", language: "rules" },
      ],
      synchronize: { fileEvents: vscode.workspace.createFileSystemWatcher("**/*.rules") },
    },
  );
  try {
    await client.start();
  } catch (error) {
    const command = serverOptions().command;
    vscode.window.showErrorMessage(
      `Protocol rules: could not start \`${command} lsp\` (${error.message}). ` +
        "Install it with `pip install 'protocol-rules[lsp]'`, or set " +
        "`protocolRules.server.command` to its path.",
    );
  }
}

async function activate(context) {
  await start(context);
  context.subscriptions.push(
    vscode.commands.registerCommand("protocolRules.restartServer", async () => {
      if (client) {
        await client.stop();
      }
      await start(context);
    }),
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (event.affectsConfiguration("protocolRules.server")) {
        await vscode.commands.executeCommand("protocolRules.restartServer");
      }
    }),
  );
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
