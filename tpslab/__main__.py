from tpslab.cli import main

raise SystemExit(main())
