//! Every AWS tool the model may be offered, gathered from the files that
//! define them: the read tools for any conversation with AWS, the change
//! tools (which only propose plan steps) for a planning one.

use crate::agent::tools::Tool;

/// The AWS read tools, for a registry.
pub fn read_tools() -> Vec<Box<dyn Tool>> {
    let mut tools = super::tools::own_read_tools();
    tools.extend(super::inventory::tools());
    tools
}

/// The AWS tools that change things, for a planning conversation.
pub fn change_tools() -> Vec<Box<dyn Tool>> {
    let mut tools = super::tools::own_change_tools();
    tools.extend(super::changes::tools());
    tools
}
