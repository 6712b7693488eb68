"""What the workflow's table and figure verbs share about the artifacts they write (results/tables/, figures/).

Library code: the verbs in clipxai.commands import it, it imports no verb (tests/test_architecture.py).
"""
