"""Issue 10's figures as tests: the access matrix, the secret leak scan and the hostile-input
corpus, each over every URL of the URL conf (docs/security.md, "Figures")."""
