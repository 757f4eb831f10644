"""What the service does, one module per use case, over the store repositories and the WeChat
API modules: onboarding accounts (links, redirect, pushed codes, recovery), component events,
leased tokens, the scheduled refresher, the token service, Mini Program login and sessions."""
