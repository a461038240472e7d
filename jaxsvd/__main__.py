from jaxsvd._cli import main

raise SystemExit(main())
