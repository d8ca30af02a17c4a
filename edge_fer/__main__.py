from edge_fer.cli import main

raise SystemExit(main())
