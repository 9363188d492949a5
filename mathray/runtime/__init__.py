"""What jobs run on: storage URIs and shard sets, model exports, the stage runner, engine pools."""
