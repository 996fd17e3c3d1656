"""GraphQL at ``/graphql``: the read side in one query, the log as a subscription.

Read-only: commands stay on REST. Every field reads through the same readers of queries/
as the REST routes (``context`` holds them, with the DataLoaders that batch a page's
nested fields); ``limits`` bounds what one document may ask; ``router`` mounts it.
"""
