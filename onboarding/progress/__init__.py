"""Where each end user is on their path. The rules as one pure function (state.derive); the engine
that evaluates stored events (engine), with what it reads (inputs), writes (saving) and how it
enrols (enrolling); the services of the progress API and the admin (services) and its reads
(selectors); answers and their totals (answers, questions); the state pushed live (push,
completions_cache); the rebuild from events (rebuild); the API and the admin of outcomes."""
