//! The administration methods (contract §7). Their params and results are the domain's, in
//! `access::admin`, which the JSON-RPC methods and `llmrpc admin` on the database both call.

use super::method::methods;
use crate::access::admin::{AddCredits, CreateKey, CreateTeam, Id, ListKeys, NoParams, UpdateTeam};
use crate::access::keys::CreatedKey;
use crate::ledger::accounts::{KeyInfo, Team};

methods! {
    TeamsCreate = "admin.teams.create": CreateTeam => Team;
    TeamsList = "admin.teams.list": NoParams => Vec<Team>;
    TeamsGet = "admin.teams.get": Id => Team;
    TeamsUpdate = "admin.teams.update": UpdateTeam => Team;
    TeamsDelete = "admin.teams.delete": Id => Team;
    /// Its result holds the key's secret, shown once, and what is stored of it.
    KeysCreate = "admin.keys.create": CreateKey => CreatedKey;
    KeysList = "admin.keys.list": ListKeys => Vec<KeyInfo>;
    KeysRevoke = "admin.keys.revoke": Id => KeyInfo;
    CreditsAdd = "admin.credits.add": AddCredits => Team;
}
