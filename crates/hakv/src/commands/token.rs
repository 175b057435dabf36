//! `hakv token create|list|revoke`: client tokens with roles on key prefixes, managed through
//! the API (`/auth/tokens`) with an admin token.

use super::client::ClientArgs;
use hakv_client::{Client, GrantSpec};

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (it is shown only this once).
    Create {
        /// What the token is for, e.g. "billing service".
        #[arg(long)]
        name: String,
        /// ROLE:PREFIX, repeatable: read:app/ (reads and scans under app/), write:app/
        /// (and writes), admin (everything, token management included).
        #[arg(long = "grant", required = true)]
        grants: Vec<GrantSpec>,
        #[command(flatten)]
        args: ClientArgs,
    },
    /// List tokens: id, name and grants (never the secrets).
    List {
        #[command(flatten)]
        args: ClientArgs,
    },
    /// Revoke a token on every member.
    Revoke {
        /// The token's id (the part before the dot).
        id: String,
        #[command(flatten)]
        args: ClientArgs,
    },
}

impl TokenCommand {
    pub(super) fn args(&self) -> &ClientArgs {
        match self {
            TokenCommand::Create { args, .. }
            | TokenCommand::List { args }
            | TokenCommand::Revoke { args, .. } => args,
        }
    }
}

pub(super) async fn execute(client: &Client, command: TokenCommand) -> anyhow::Result<()> {
    let json = command.args().json;
    match command {
        TokenCommand::Create { name, grants, .. } => {
            let created = client.create_token(&name, &grants).await?;
            if json {
                println!("{created}");
            } else {
                println!("{}", created["token"].as_str().unwrap_or_default());
                eprintln!("id {} (keep the token: it is not shown again)", created["id"]);
            }
        }
        TokenCommand::List { .. } => {
            let listed = client.list_tokens().await?;
            if json {
                println!("{listed}");
            } else {
                for token in listed["tokens"].as_array().into_iter().flatten() {
                    let grants: Vec<String> = token["grants"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|g| {
                            format!(
                                "{}:{}",
                                g["role"].as_str().unwrap_or("?"),
                                g["prefix"].as_str().unwrap_or("")
                            )
                        })
                        .collect();
                    println!(
                        "{}  {}  {}",
                        token["id"].as_str().unwrap_or("?"),
                        token["name"].as_str().unwrap_or("?"),
                        grants.join(" ")
                    );
                }
            }
        }
        TokenCommand::Revoke { id, .. } => {
            client.revoke_token(&id).await?;
            if json {
                println!("{}", serde_json::json!({ "revoked": id }));
            } else {
                println!("revoked {id}");
            }
        }
    }
    Ok(())
}
