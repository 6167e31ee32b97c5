//! Workflows: state machines in the Amazon States Language, run durably. Definitions are
//! checked when their tenant loads ([`Machine::parse`]); the [`Executor`] runs
//! executions one committed transition at a time over the store, so any host sharing
//! the store can resume any execution. A Task's `Resource` names one of the tenant's
//! plugins, which receives a `task` event.

mod choice;
mod definition;
pub mod definition_error;
pub mod distributed;
pub mod errors;
pub mod execution_name;
mod executor;
mod fields;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod fuzz;
mod intrinsics;
mod items;
mod jsonata;
mod path;
mod payload;
pub mod scripted;
mod template;

pub use definition::{Kind, Machine, State};
pub use definition_error::DefinitionError;
pub use errors::StateError;
pub use executor::{
    Executor, ExecutorOptions, RedriveError, StartError, Started, TaskCall, TaskRunner,
    execution_variables,
};

#[cfg(test)]
mod callback_tests;
#[cfg(test)]
mod distributed_tests;
#[cfg(test)]
mod executor_tests;
#[cfg(test)]
mod jsonata_tests;
#[cfg(test)]
mod redrive_tests;
#[cfg(test)]
mod spec_tests;
